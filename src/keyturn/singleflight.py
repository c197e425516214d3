"""One in-flight store read per key, shared by every caller that needs it.

The in-process caches (sessions, users, the revocation replica) trust an entry
for the staleness bound. Without coordination, every request that arrives when
an entry turns stale re-reads the store at once (a herd that stalls the event
loop behind one database thread). :class:`SingleFlight` lets the first caller
start the read and the others await the same result; :meth:`SingleFlight.start`
begins it in the background, so a cache can refresh an entry *before* it
expires and no request waits at all under steady traffic.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

logger = logging.getLogger("keyturn.cache")


class SingleFlight(Generic[K, V]):
    """Deduplicates concurrent loads by key."""

    def __init__(self) -> None:
        self._pending: dict[K, asyncio.Future[V]] = {}

    def _future(self, key: K, load: Callable[[], Awaitable[V]]) -> asyncio.Future[V]:
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(load())
            self._pending[key] = pending
            pending.add_done_callback(lambda done: self._finished(key, done))
        return pending

    def _finished(self, key: K, done: asyncio.Future[V]) -> None:
        if self._pending.get(key) is done:
            del self._pending[key]
        if not done.cancelled() and done.exception() is not None:
            # Retrieved here so a background refresh that failed is logged once
            # instead of warning "exception was never retrieved"; awaiting callers
            # still receive it.
            logger.debug("load of %r failed: %r", key, done.exception())

    async def run(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The result of ``load()``, shared with every concurrent caller of ``key``.

        Raises:
            Whatever ``load()`` raises, to every caller waiting on it.
        """
        # shield: one cancelled request must not cancel the load the others await
        return await asyncio.shield(self._future(key, load))

    def start(self, key: K, load: Callable[[], Awaitable[V]]) -> None:
        """Begin ``load()`` in the background unless one is already running."""
        self._future(key, load)

    def running(self, key: K) -> bool:
        """Whether a load of ``key`` is in flight."""
        return key in self._pending
