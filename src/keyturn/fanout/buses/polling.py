"""Changes through a table every instance polls: for SQLite, which has no NOTIFY.

Several processes on one SQLite file (``keyturn serve --workers 4``, or the
CLI next to a running server) share the ``change_log`` table: publishing is an
``INSERT``, and every listener reads the rows above the last ``seq`` it saw,
every :data:`POLL_INTERVAL` seconds. SQLite has one writer at a time, so a row
with a higher ``seq`` never commits before one with a lower ``seq`` and a poll
never skips a row; ``AUTOINCREMENT`` keeps numbers from being reused after a
trim. Each successful poll verifies the channel; a failing poll (or none for
``staleness_bound / 2``) ends the epoch. The sweeper deletes rows older than
:data:`RETAIN` seconds (:meth:`PollingBus.sweep`); a listener that falls that
far behind has long lost its epoch anyway.

Not for PostgreSQL: there a sequence number is taken before commit, so rows
can appear out of order; PostgreSQL deployments use LISTEN/NOTIFY.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from keyturn.clock import Clock
from keyturn.fanout.buses.liveness import ListeningBus
from keyturn.stores.sql.engine import connect
from keyturn.stores.sql.schema import change_log

if TYPE_CHECKING:
    from keyturn.stores.sql.direct import SqliteDirect

__all__ = ["POLL_INTERVAL", "RETAIN", "PollingBus"]

logger = logging.getLogger("keyturn.fanout")

#: Seconds between polls.
POLL_INTERVAL: Final = 0.05
#: Seconds a published change stays in the table.
RETAIN: Final = 600.0
_BATCH = 500
#: The steady-state poll as plain SQL, for the direct path.
_NEWER: Final = "SELECT seq, payload FROM change_log WHERE seq > ? ORDER BY seq LIMIT ?"


class PollingBus(ListeningBus):
    """A :class:`~keyturn.fanout.changes.ChangeBus` over the ``change_log`` table.

    Args:
        engine: the storage's engine (SQLite file).
        bound: ``staleness_bound``; the channel is lost after half of it without
            a successful poll.
        clock: stamps rows for the trim (the instance's clock); ``alive_since``.
        timer: times polls (monotonic when None).
        interval: seconds between polls.
        direct: the storage's plain-SQL path (:mod:`keyturn.stores.sql.direct`):
            a poll that finds nothing new (nearly all of them) then costs a few
            microseconds on the event loop's thread, not a trip through
            SQLAlchemy and the driver's thread; every worker polls 20 times a
            second, so that trip was a few per cent of each worker's CPU.
    """

    name = "polling"
    max_message_bytes = 64 * 1024

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        bound: float,
        clock: Clock,
        timer: Clock | None = None,
        interval: float = POLL_INTERVAL,
        direct: SqliteDirect | None = None,
    ) -> None:
        super().__init__(bound=bound, clock=clock, timer=timer)
        self._engine = engine
        self._direct = direct
        self.interval = interval
        self._last: int | None = None
        self._failing = False
        self._stopping = asyncio.Event()

    async def start(self, deliver: Callable[[str], None], connected: Callable[[], None]) -> None:
        self._stopping.clear()
        await super().start(deliver, connected)

    async def publish(self, message: str) -> None:
        statement = change_log.insert().values(created_at=self._clock.now(), payload=message)
        async with connect(self._engine, write=True) as connection:
            await connection.execute(statement)

    async def _pause(self, seconds: float) -> None:
        """Sleep, waking early when :meth:`close` asks the loop to stop."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stopping.wait()

    async def listen(self) -> None:
        delay = self.interval
        while not self._stopping.is_set():
            started = self._timer.now()
            try:
                full = await self._poll()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._liveness.lost()
                if not self._failing:
                    logger.warning("cannot poll the change table (%s); retrying", exc)
                self._failing = True
                await self._pause(delay)
                delay = min(delay * 2, 1.0)
                continue
            if self._failing:
                logger.warning("polling the change table again")
            self._failing = False
            delay = self.interval
            if self._liveness.verified(started):
                self.connected()
            if not full:
                await self._pause(self.interval)

    async def _poll(self) -> bool:
        """Deliver new rows; True when a full batch came (poll again at once)."""
        if self._direct is not None and self._last is not None:
            rows: Sequence[Sequence[Any]] = await self._direct.read_rows(
                _NEWER, (self._last, _BATCH)
            )
            return self._deliver_rows(rows)
        async with connect(self._engine) as connection:
            if self._last is None:
                top = await connection.execute(sa.select(sa.func.max(change_log.c.seq)))
                self._last = int(top.scalar() or 0)
                return False
            query = (
                sa.select(change_log.c.seq, change_log.c.payload)
                .where(change_log.c.seq > self._last)
                .order_by(change_log.c.seq)
                .limit(_BATCH)
            )
            rows = (await connection.execute(query)).all()
        return self._deliver_rows(rows)

    def _deliver_rows(self, rows: Sequence[Sequence[Any]]) -> bool:
        for seq, payload in rows:
            self._last = int(seq)
            self.deliver(payload)
        return len(rows) == _BATCH

    async def sweep(self, now: float) -> int:
        statement = change_log.delete().where(change_log.c.created_at < now - RETAIN)
        async with connect(self._engine, write=True) as connection:
            result = await connection.execute(statement)
        return int(result.rowcount)

    async def close(self) -> None:
        if self._task is not None:
            # Let a poll in flight finish (cancelling it mid-query can leave the
            # SQLite driver's thread answering a closed event loop).
            self._stopping.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2.0):
                    await asyncio.shield(self._task)
        await super().close()
