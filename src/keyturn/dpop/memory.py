"""The in-process ``jti`` replay cache: the reference :class:`~keyturn.dpop.store.ReplayCache`.

Bounded and TTL'd. Entries live in insertion order with their deadlines; every add
first drops expired entries from the old end, so with the verifier's constant TTL
the cost stays O(1) per proof. When ``max_entries`` unexpired entries are held the
cache refuses (``StoreUnavailable``) rather than forget a live entry: evicting one
would let that proof be replayed. Size it above the peak proof rate times the
proof window (100 000 entries is about 1 600 proofs per second for 60 s, ~25 MB).

One instance serves one process; several instances need the Redis cache, or a
proof accepted by one is accepted again by the next.
"""

from __future__ import annotations

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

    __slots__ = ("_clock", "_entries", "_max_entries")

    def __init__(self, clock: Clock, *, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._clock = clock
        self._max_entries = max_entries
        self._entries: OrderedDict[str, float] = OrderedDict()

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
        entries = self._entries
        while entries:  # drop expired entries from the old end
            oldest, deadline = next(iter(entries.items()))
            if deadline > now:
                break
            del entries[oldest]
        seen = entries.get(key)
        if seen is not None and seen > now:
            return False
        if len(entries) >= self._max_entries:
            self._sweep(now)  # deadlines may be out of order when TTLs differ
            if len(entries) >= self._max_entries:
                raise StoreUnavailable("the DPoP replay cache is full")
        entries[key] = now + ttl
        entries.move_to_end(key)
        return True

    def _sweep(self, now: float) -> None:
        for key in [key for key, deadline in self._entries.items() if deadline <= now]:
            del self._entries[key]
