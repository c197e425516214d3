"""Changes over PostgreSQL ``LISTEN``/``NOTIFY``, for deployments without Redis.

The listener holds one asyncpg connection of its own (outside the SQLAlchemy
pool), ``LISTEN keyturn_changes``, and runs ``SELECT 1`` on it every
``staleness_bound / 4`` seconds: PostgreSQL sends a notification to a listening
session before the answer of a query that started after the notifying commit, so
the answer verifies that everything published before the query was delivered.
No answer within ``staleness_bound / 2``, a closed connection or any error ends
the epoch; it reconnects with exponential backoff (50 ms doubling to 2 s).

Publishing is ``SELECT pg_notify(...)`` through the storage's engine (a pooled
connection, no extra one). A payload must stay under 8000 bytes: larger
changes are split by :func:`keyturn.fanout.changes.encode_chunks`. Notifications are
per database: every instance of a deployment uses the same database.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from keyturn.clock import Clock
from keyturn.fanout.buses.liveness import ListeningBus, Reconnector
from keyturn.stores.sql.engine import connect, create_engine_for

__all__ = ["APPLICATION_NAME", "DEFAULT_CHANNEL", "PostgresBus", "asyncpg_dsn"]


DEFAULT_CHANNEL = "keyturn_changes"
#: How the listening connection shows in ``pg_stat_activity``.
APPLICATION_NAME = "keyturn-fanout"
_CONNECT_TIMEOUT = 5.0
_NOTIFY = sa.text("SELECT pg_notify(:channel, :payload)")


def asyncpg_dsn(database_url: str) -> str:
    """A plain ``postgresql://`` DSN for asyncpg from a SQLAlchemy URL."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresBus(ListeningBus):
    """A :class:`~keyturn.fanout.changes.ChangeBus` over PostgreSQL ``LISTEN``/``NOTIFY``.

    Args:
        database_url: the deployment's ``postgresql+asyncpg://`` URL.
        bound: ``staleness_bound`` (heartbeat every quarter, lost after half).
        clock: POSIX time (``alive_since``).
        timer: times heartbeats (monotonic when None).
        engine: the storage's engine to publish through (one is made from
            ``database_url``, and disposed at :meth:`close`, when None).
        channel: the notification channel.
    """

    name = "postgres"
    max_message_bytes = 7900

    def __init__(
        self,
        database_url: str,
        *,
        bound: float,
        clock: Clock,
        timer: Clock | None = None,
        engine: AsyncEngine | None = None,
        channel: str = DEFAULT_CHANNEL,
    ) -> None:
        super().__init__(bound=bound, clock=clock, timer=timer)
        self._dsn = asyncpg_dsn(database_url)
        self.channel = channel
        self._owns_engine = engine is None
        self._engine = engine if engine is not None else create_engine_for(database_url)
        self._reconnector = Reconnector("postgres", self._liveness)

    async def listen(self) -> None:
        await self._reconnector.run(self._listen)

    async def publish(self, message: str) -> None:
        async with connect(self._engine, write=True) as connection:
            await connection.execute(_NOTIFY, {"channel": self.channel, "payload": message})

    def _on_notify(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self.deliver(payload)

    async def _listen(self) -> None:
        import asyncpg

        connection = await asyncpg.connect(
            self._dsn,
            timeout=_CONNECT_TIMEOUT,
            server_settings={"application_name": APPLICATION_NAME},
        )
        closed = asyncio.Event()
        connection.add_termination_listener(lambda _connection: closed.set())
        try:
            async with asyncio.timeout(_CONNECT_TIMEOUT):
                await connection.add_listener(self.channel, self._on_notify)
            self._liveness.restart()
            self._reconnector.up()
            self.connected()
            while not closed.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.interval):
                        await closed.wait()
                if closed.is_set():
                    break
                sent = self._timer.now()
                async with asyncio.timeout(self._liveness.timeout):
                    await connection.fetchval("SELECT 1")
                if self._liveness.verified(sent):
                    self.connected()
            raise ConnectionError("the listening connection was closed")
        finally:
            self._liveness.lost()
            connection.terminate()

    async def close(self) -> None:
        await super().close()
        if self._owns_engine:
            await self._engine.dispose()
