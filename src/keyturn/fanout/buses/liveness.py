"""Whether a channel is verified alive, as an epoch number (see :mod:`keyturn.fanout.instance`),
and the listener plumbing the network buses share.

A bus calls :meth:`Liveness.verified` with the time it *sent* a heartbeat once
the answer comes back on the listening connection: everything published before
that moment has then been delivered (one connection delivers in order). The
channel counts as alive while the last such moment is under ``timeout`` ago.
An unbroken run of verifications is one *epoch*; an error, a reconnection or a
verification that comes too late starts a new one, so a cache entry tagged with
an old epoch is never trusted past the plain staleness bound again.

Heartbeats are timed by the bus's ``timer``, a
:class:`~keyturn.clock.MonotonicClock` in production (a step of the wall clock
must not make a dead channel look alive); epochs are numbers, so the caches
(which may run on an injected clock) never compare times with it.
:attr:`Liveness.alive_since` is POSIX time from the instance's ``clock``.

:class:`ListeningBus` is what the Redis, PostgreSQL and polling buses share: the
epoch, the two callbacks, and the one background listener task that
:meth:`~ListeningBus.start` begins and :meth:`~ListeningBus.close` ends;
:class:`Reconnector` runs a listener again after every failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

from keyturn.clock import Clock, MonotonicClock

__all__ = ["ListeningBus", "Liveness", "Reconnector"]

logger = logging.getLogger("keyturn.fanout")

#: Longest pause between reconnection attempts, seconds.
MAX_BACKOFF = 2.0


class Liveness:
    """Epochs of verified delivery.

    Args:
        timeout: seconds a verification stays good (``staleness_bound / 2``).
        timer: what heartbeat times (``sent_at``) are read from: the bus's own
            (monotonic) timer.
        clock: POSIX time, for :attr:`alive_since`.
    """

    def __init__(self, timeout: float, *, timer: Clock, clock: Clock) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.timeout = timeout
        self._timer = timer
        self._clock = clock
        self._epoch = 0
        self._verified: float | None = None  # timer
        self._since: float | None = None  # POSIX time the epoch began

    @property
    def epoch(self) -> int | None:
        """The current epoch, or None when the last verification is too old."""
        verified = self._verified
        if verified is None or self._timer.now() - verified > self.timeout:
            return None
        return self._epoch

    @property
    def alive_since(self) -> float | None:
        """POSIX time the current epoch began, or None when not alive."""
        return None if self.epoch is None else self._since

    def restart(self) -> None:
        """A new connection delivers from now on (subscribed, listening)."""
        self._epoch += 1
        self._verified = self._timer.now()
        self._since = self._clock.now()

    def verified(self, sent_at: float) -> bool:
        """Everything published before ``sent_at`` (timer) was delivered.
        Returns True when this starts a new epoch (the previous one had lapsed).
        An answer that took longer than ``timeout`` verifies nothing."""
        now = self._timer.now()
        if now - sent_at > self.timeout:
            self.lost()
            return False
        previous = self._verified
        if previous is None or now - previous > self.timeout:
            self._epoch += 1
            self._since = self._clock.now()
            self._verified = sent_at
            return True
        self._verified = max(previous, sent_at)
        return False

    def lost(self) -> None:
        """The connection failed: nothing is known to be delivered any more."""
        self._verified = None


class ListeningBus:
    """The shared half of a network :class:`~keyturn.fanout.changes.ChangeBus`:
    its epoch (a :class:`Liveness` of ``bound / 2``), the ``deliver`` and
    ``connected`` callbacks, and one listener task.

    A subclass sets :attr:`name` and :attr:`max_message_bytes` and implements
    :meth:`listen` (run until cancelled; it calls :meth:`deliver` for every
    message and :meth:`connected` whenever an epoch begins) and ``publish``.

    Args:
        bound: ``staleness_bound``: heartbeats every quarter of it, the channel
            counts as lost after half of it without an answer.
        clock: POSIX time (the instance's clock).
        timer: times heartbeats; a :class:`~keyturn.clock.MonotonicClock` when None.
    """

    name: str
    max_message_bytes: int

    def __init__(self, *, bound: float, clock: Clock, timer: Clock | None = None) -> None:
        self.interval = bound / 4
        self._clock = clock
        self._timer: Clock = timer if timer is not None else MonotonicClock()
        self._liveness = Liveness(bound / 2, timer=self._timer, clock=clock)
        self._deliver: Callable[[str], None] | None = None
        self._connected: Callable[[], None] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def epoch(self) -> int | None:
        return self._liveness.epoch

    @property
    def alive_since(self) -> float | None:
        return self._liveness.alive_since

    def deliver(self, message: str) -> None:
        """Hand one received message to the instance."""
        if self._deliver is not None:
            self._deliver(message)

    def connected(self) -> None:
        """Tell the instance a new epoch began."""
        if self._connected is not None:
            self._connected()

    async def start(self, deliver: Callable[[str], None], connected: Callable[[], None]) -> None:
        self._deliver, self._connected = deliver, connected
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self.listen(), name=f"keyturn-fanout-{self.name}"
            )

    async def listen(self) -> None:
        """Listen until cancelled (see the class doc)."""
        raise NotImplementedError

    async def sweep(self, now: float) -> int:
        return 0

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._liveness.lost()


class Reconnector:
    """Keeps a bus's listening connection up: runs ``listen`` again after every
    failure, with jittered exponential backoff (50 ms to :data:`MAX_BACKOFF`),
    and logs a lost channel once per outage.

    ``listen`` must call :meth:`up` once it is subscribed and delivering.

    Args:
        name: the bus, for the log (``"redis"``, ``"postgres"``).
        liveness: marked lost on every failure.
    """

    def __init__(self, name: str, liveness: Liveness) -> None:
        self.name = name
        self.liveness = liveness
        self._failures = 0

    def up(self) -> None:
        """The connection is listening again: log the recovery, reset the backoff."""
        if self._failures:
            logger.warning("%s change channel is back", self.name)
        self._failures = 0

    async def run(self, listen: Callable[[], Awaitable[None]]) -> None:
        """Run ``listen`` until cancelled, reconnecting after each failure."""
        backoff = 0.05
        while True:
            try:
                await listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.liveness.lost()
                self._failures += 1
                if self._failures == 1:  # the first failure after a good connection
                    backoff = 0.05
                    logger.warning("%s change channel lost (%s); reconnecting", self.name, exc)
                else:
                    logger.debug("%s change channel still down: %s", self.name, exc)
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))  # noqa: S311 (jitter)
            backoff = min(backoff * 2, MAX_BACKOFF)
