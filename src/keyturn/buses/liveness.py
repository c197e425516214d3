"""Whether a channel is verified alive, as an epoch number (see :mod:`keyturn.fanout`).

A bus calls :meth:`Liveness.verified` with the time it *sent* a heartbeat once
the answer comes back on the listening connection: everything published before
that moment has then been delivered (one connection delivers in order). The
channel counts as alive while the last such moment is under ``timeout`` ago.
An unbroken run of verifications is one *epoch*; an error, a reconnection or a
verification that comes too late starts a new one, so a cache entry tagged with
an old epoch is never trusted past the plain staleness bound again.

Time here is :func:`time.monotonic`, the bus's own: epochs are numbers, so the
caches (which may run on an injected clock) never compare times with it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable

__all__ = ["Liveness", "Reconnector"]

logger = logging.getLogger("keyturn.fanout")

#: Longest pause between reconnection attempts, seconds.
MAX_BACKOFF = 2.0


class Liveness:
    """Epochs of verified delivery.

    Args:
        timeout: seconds a verification stays good (``staleness_bound / 2``).
    """

    def __init__(self, timeout: float) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.timeout = timeout
        self._epoch = 0
        self._verified: float | None = None  # monotonic
        self._since: float | None = None  # POSIX time the epoch began

    @property
    def epoch(self) -> int | None:
        """The current epoch, or None when the last verification is too old."""
        verified = self._verified
        if verified is None or time.monotonic() - verified > self.timeout:
            return None
        return self._epoch

    @property
    def alive_since(self) -> float | None:
        """POSIX time the current epoch began, or None when not alive."""
        return None if self.epoch is None else self._since

    def restart(self) -> None:
        """A new connection delivers from now on (subscribed, listening)."""
        self._epoch += 1
        self._verified = time.monotonic()
        self._since = time.time()

    def verified(self, sent_at: float) -> bool:
        """Everything published before ``sent_at`` (monotonic) was delivered.
        Returns True when this starts a new epoch (the previous one had lapsed).
        An answer that took longer than ``timeout`` verifies nothing."""
        now = time.monotonic()
        if now - sent_at > self.timeout:
            self.lost()
            return False
        previous = self._verified
        if previous is None or now - previous > self.timeout:
            self._epoch += 1
            self._since = time.time()
            self._verified = sent_at
            return True
        self._verified = max(previous, sent_at)
        return False

    def lost(self) -> None:
        """The connection failed: nothing is known to be delivered any more."""
        self._verified = None


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
