"""A ``limits`` async storage on the SQL database (SQLite or PostgreSQL).

The sign-in throttle (:mod:`keyturn.accounts.throttle`) counts failures with the
``limits`` library; this storage keeps its fixed-window counters in the
``login_throttle`` table, so every worker and host sharing the database shares
the counts, and a restart does not reset them. Redis will serve the same role
(:mod:`keyturn.stores.redis.throttle`) when ``--redis-url`` is set; the database
is the default because it is already there.

Each row is one counter: ``key`` (built by ``limits`` from SHA-256 digests, so
no e-mail or IP address is stored), ``count`` and ``expires_at`` (POSIX seconds
from the injected clock). An increment is one ``INSERT ... ON CONFLICT DO
UPDATE`` statement that starts a new window when the stored one has expired, so
concurrent increments never lose a count on either database.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from limits.aio.storage import Storage
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from keyturn.clock import Clock
from keyturn.errors import StoreUnavailable
from keyturn.stores.sql.engine import connect
from keyturn.stores.sql.schema import login_throttle

__all__ = ["SqlThrottleStorage", "login_throttle"]


class SqlThrottleStorage(Storage):
    """Fixed-window counters in the ``login_throttle`` table.

    Implements the ``limits.aio.storage.Storage`` interface (``incr``, ``get``,
    ``get_expiry``, ``clear``, ``reset``, ``check``), which is all the
    fixed-window strategy needs. Connection failures surface as
    :class:`~keyturn.errors.StoreUnavailable` (or, with ``wrap_exceptions=True``,
    as ``limits.errors.StorageError``).

    Args:
        engine: the engine of :class:`~keyturn.stores.sql.SqlStorage`.
        clock: the time windows are measured by; give the throttle the same one.
    """

    STORAGE_SCHEME = None  # built directly, never from a limits URI

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Clock,
        wrap_exceptions: bool = False,
    ) -> None:
        super().__init__(wrap_exceptions=wrap_exceptions)
        self.engine = engine
        self.clock = clock

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return (StoreUnavailable, sa_exc.SQLAlchemyError, OSError)

    def _insert(self) -> Any:
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            return postgresql.insert(login_throttle)
        if dialect == "sqlite":
            return sqlite.insert(login_throttle)
        raise NotImplementedError(f"no upsert for the {dialect} dialect")  # pragma: no cover

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Add ``amount`` to the counter and return the new value; a missing or
        expired counter starts over at ``amount`` with a window of ``expiry`` s."""
        now = self.clock.now()
        insert = self._insert().values(key=key, count=amount, expires_at=now + expiry)
        current = login_throttle.c
        expired = current.expires_at <= now
        statement = insert.on_conflict_do_update(
            index_elements=[current.key],
            set_={
                "count": sa.case((expired, amount), else_=current.count + amount),
                "expires_at": sa.case((expired, now + expiry), else_=current.expires_at),
            },
        ).returning(current.count)
        async with connect(self.engine, write=True) as connection:
            result = await connection.execute(statement)
            return int(result.scalar_one())

    async def get(self, key: str) -> int:
        """The counter's value, 0 when missing or expired."""
        query = sa.select(login_throttle.c.count).where(
            login_throttle.c.key == key, login_throttle.c.expires_at > self.clock.now()
        )
        async with connect(self.engine) as connection:
            value = (await connection.execute(query)).scalar_one_or_none()
        return int(value) if value is not None else 0

    async def get_expiry(self, key: str) -> float:
        """When the counter's window ends (POSIX seconds); now when there is none."""
        now = self.clock.now()
        query = sa.select(login_throttle.c.expires_at).where(
            login_throttle.c.key == key, login_throttle.c.expires_at > now
        )
        async with connect(self.engine) as connection:
            value = (await connection.execute(query)).scalar_one_or_none()
        return float(value) if value is not None else now

    async def clear(self, key: str) -> None:
        """Forget one counter."""
        statement = login_throttle.delete().where(login_throttle.c.key == key)
        async with connect(self.engine, write=True) as connection:
            await connection.execute(statement)

    async def reset(self) -> int | None:
        """Forget every counter; returns how many there were."""
        async with connect(self.engine, write=True) as connection:
            result = await connection.execute(login_throttle.delete())
        return int(result.rowcount)

    async def purge_expired(self) -> int:
        """Delete counters whose window has passed (housekeeping; returns how many)."""
        statement = login_throttle.delete().where(login_throttle.c.expires_at <= self.clock.now())
        async with connect(self.engine, write=True) as connection:
            result = await connection.execute(statement)
        return int(result.rowcount)

    async def check(self) -> bool:
        """True when the table answers a query."""
        try:
            async with connect(self.engine) as connection:
                await connection.execute(sa.select(sa.func.count()).select_from(login_throttle))
        except Exception:  # a health probe answers, it does not raise
            return False
        return True
