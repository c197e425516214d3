"""The PostgreSQL half of :mod:`keyturn.stores.sql.direct`: single statements on
a few ``asyncpg`` connections kept out of the engine's pool."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keyturn.errors import StoreUnavailable
from keyturn.stores.sql.engine import is_connection_error, safe_url, unavailable

__all__ = ["PostgresDirect"]

#: SQLSTATE classes of an unusable PostgreSQL server: connection exception,
#: insufficient resources, operator intervention (shutdown), system error.
_PG_OUTAGE_CLASSES = frozenset({"08", "53", "57", "58"})
_PLACEHOLDER = re.compile(r"\?")


class PostgresDirect:
    """Single statements on a few ``asyncpg`` connections kept out of the
    engine's pool.

    A check-out of the engine's pool costs three round trips before the
    statement (``pool_pre_ping`` sends ``BEGIN``, ``;``, ``ROLLBACK``) and the
    SQLAlchemy connection's bookkeeping around it; this object keeps up to
    ``size`` connections checked out and reuses them. A kept connection the
    server dropped (a restart, an idle timeout) fails its next statement with a
    connection error: it is discarded and the statement runs once more on a
    fresh connection, the retry the pre-ping makes; failing again, or on a fresh
    connection, is :class:`~keyturn.errors.StoreUnavailable`. (A statement that
    did commit before its answer was lost runs twice: the refresh store's
    statements are compare-and-set, so the second run matches nothing.)
    """

    def __init__(self, engine: AsyncEngine, *, size: int = 4) -> None:
        self._engine = engine
        self._size = size
        self._slots: asyncio.Semaphore | None = None
        self._idle: list[AsyncConnection] = []
        self._numbered: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"PostgresDirect({safe_url(self._engine)!r})"

    async def fetch_one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        """See :meth:`DirectSql.fetch_one`; ``?`` become ``$1``, ``$2``, …"""
        text = self._numbered.get(sql)
        if text is None:
            counter = iter(range(1, len(params) + 1))
            text = self._numbered[sql] = _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)
        if self._slots is None:
            self._slots = asyncio.Semaphore(self._size)
        async with self._slots:
            while True:
                kept = bool(self._idle)
                connection = self._idle.pop() if kept else await self._check_out()
                try:
                    raw = await connection.get_raw_connection()
                    row = await raw.driver_connection.fetchrow(text, *params)  # type: ignore[union-attr]
                except Exception as exc:
                    if not _pg_outage(exc):
                        self._idle.append(connection)  # autocommit: nothing left open
                        raise
                    await _discard(connection)
                    if kept:
                        continue  # a stale kept connection: once more on a fresh one
                    raise StoreUnavailable(
                        f"cannot reach database {safe_url(self._engine)}: {type(exc).__name__}"
                    ) from exc
                except BaseException:
                    await _discard(connection)  # cancelled mid-statement: state unknown
                    raise
                self._idle.append(connection)
                return None if row is None else tuple(row)

    async def read_one(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...] | None:
        """See :meth:`DirectSql.read_one` (the same as :meth:`fetch_one` here)."""
        return await self.fetch_one(sql, params)

    async def close(self) -> None:
        """Give the kept connections back to the engine's pool."""
        idle, self._idle = self._idle, []
        self._slots = None  # bound to this event loop; a later one makes its own
        for connection in idle:
            with contextlib.suppress(Exception):
                await connection.close()

    async def _check_out(self) -> AsyncConnection:
        connection = self._engine.connect()
        try:
            await connection.start()
        except Exception as exc:
            if is_connection_error(exc):
                raise unavailable(self._engine, exc) from exc
            raise
        return connection


async def _discard(connection: AsyncConnection) -> None:
    with contextlib.suppress(Exception):
        await connection.invalidate()
    with contextlib.suppress(Exception):
        await connection.close()


def _pg_outage(exc: BaseException) -> bool:
    """Whether an ``asyncpg`` error means the server is unusable (fail closed)."""
    if isinstance(exc, (OSError, TimeoutError)):
        return True
    import asyncpg

    # InternalClientError: the protocol is in a state it cannot leave ("another
    # operation is in progress"), as when the server ended the backend and the
    # connection has not noticed yet: the connection is unusable, like a closed one.
    if isinstance(
        exc, (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, asyncpg.InternalClientError)
    ):
        return True
    state = getattr(exc, "sqlstate", None)
    return isinstance(state, str) and state[:2] in _PG_OUTAGE_CLASSES
