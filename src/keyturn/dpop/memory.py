"""The in-process ``jti`` replay cache: the reference :class:`~keyturn.dpop.store.ReplayCache`.

Bounded and TTL'd. Entries live in insertion order with their deadlines; an add
drops expired entries from the old end once the oldest entry's deadline has passed
(it remembers that deadline, so most adds only compare two floats), so with the
verifier's constant TTL the cost stays O(1) per proof and allocates only the entry.
When ``max_entries`` unexpired entries are held the cache refuses
(``StoreUnavailable``) rather than forget a live entry: evicting one would let that
proof be replayed. Size it above the peak proof rate times the proof window
(100 000 entries is about 1 600 proofs per second for 60 s, ~25 MB).

One instance serves one process; several instances need the Redis cache, or a
proof accepted by one is accepted again by the next.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Final

from keyturn.clock import Clock
from keyturn.errors import StoreUnavailable

__all__ = ["DEFAULT_MAX_ENTRIES", "MemoryReplayCache"]

DEFAULT_MAX_ENTRIES: Final = 100_000


class MemoryReplayCache:
    """A bounded, TTL'd set of proof keys in this process.

    Args:
        clock: the time source for deadlines.
        max_entries: the most unexpired entries held at once.

    Raises:
        ValueError: ``max_entries`` is below 1.
    """

    __slots__ = ("_clock", "_entries", "_max_entries", "_oldest_deadline")

    def __init__(self, clock: Clock, *, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._clock = clock
        self._max_entries = max_entries
        self._entries: OrderedDict[str, float] = OrderedDict()
        #: The deadline of the entry at the old end (inf when empty): before it
        #: nothing at that end can have expired.
        self._oldest_deadline = math.inf

    def __len__(self) -> int:
        return len(self._entries)

    async def add(self, key: str, ttl: int) -> bool:
        """Record ``key`` for ``ttl`` seconds unless already recorded; see
        :meth:`keyturn.dpop.store.ReplayCache.add`.

        Raises:
            StoreUnavailable: ``max_entries`` unexpired entries are held.
            ValueError: ``ttl`` is below 1.
        """
        if ttl < 1:
            raise ValueError("ttl must be at least 1 second")
        now = self._clock.now()
        if now >= self._oldest_deadline:
            self._drop_expired(now)
        entries = self._entries
        seen = entries.get(key)
        if seen is not None:
            if seen > now:
                return False
            del entries[key]  # expired but not yet dropped: re-added at the new end
        if len(entries) >= self._max_entries:
            self._sweep(now)  # deadlines may be out of order when TTLs differ
            if len(entries) >= self._max_entries:
                raise StoreUnavailable("the DPoP replay cache is full")
        deadline = now + ttl
        if not entries:
            self._oldest_deadline = deadline
        entries[key] = deadline
        return True

    def _drop_expired(self, now: float) -> None:
        """Drop expired entries from the old end, up to the first live one."""
        entries = self._entries
        while entries:
            oldest = next(iter(entries))
            deadline = entries[oldest]
            if deadline > now:
                self._oldest_deadline = deadline
                return
            del entries[oldest]
        self._oldest_deadline = math.inf

    def _sweep(self, now: float) -> None:
        for key in [key for key, deadline in self._entries.items() if deadline <= now]:
            del self._entries[key]
        self._drop_expired(now)  # the old end may have changed
