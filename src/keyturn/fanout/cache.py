"""The one in-process cache of store reads, trusted by the fan-out rules.

Browser sessions (:mod:`keyturn.sessions.cache`) and the bearer path's users
(:mod:`keyturn.tokens.bearer`) keep what the store said in a bounded LRU, and
use an entry without I/O for as long as the rules of :mod:`keyturn.fanout.instance`
allow: ``staleness_bound`` always, up to ``cache_ttl`` while the bus vouches for
the epoch the entry was read in (rules 1 and 2), unless the revocation replica
says the entry's session or user changed since (rule 5). :class:`TrustedCache`
is those rules and the LRU, written once.

An entry is anything with ``fetched_at`` (when its store read began, on the
instance's clock) and ``trusted`` (the epoch it may be trusted under, from
:meth:`FanOut.trusted <keyturn.fanout.instance.FanOut.trusted>`, or None).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Final, Generic, Protocol, TypeVar

from keyturn.fanout.instance import FanOut

__all__ = ["DUE", "FRESH", "STALE", "Fetched", "TrustedCache"]

#: What :meth:`TrustedCache.check` says of an entry: re-read it now (0, false),
#: use it (1), or use it and re-read it in the background (2, the second half of
#: its limit: under steady traffic nobody waits for the store).
STALE: Final = 0
FRESH: Final = 1
DUE: Final = 2


class Fetched(Protocol):
    """What the cache needs of an entry."""

    fetched_at: float
    trusted: int | None


K = TypeVar("K", bound=Hashable)
E = TypeVar("E", bound=Fetched)


class TrustedCache(Generic[K, E]):
    """A bounded LRU of store reads, used within the fan-out trust rules.

    Args:
        fanout: the trust rules (and the bus epoch).
        max_entries: how many entries to keep; the least recently used goes first.
        on_evict: called with every entry pushed out by the bound or dropped by
            :meth:`purge` (not with entries the caller pops), so an index beside
            the cache stays right.

    Raises:
        ValueError: ``max_entries`` is below 1.
    """

    __slots__ = ("_entries", "_fanout", "_on_evict", "get", "max_entries", "touch")

    def __init__(
        self,
        fanout: FanOut,
        *,
        max_entries: int,
        on_evict: Callable[[K, E], None] | None = None,
    ) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._fanout = fanout
        self.max_entries = max_entries
        self._on_evict = on_evict
        self._entries: OrderedDict[K, E] = OrderedDict()
        # The dictionary's own methods, so the hot path pays no extra Python call:
        #: The entry of a key however old (ask :meth:`check`), or None.
        self.get: Callable[[K], E | None] = self._entries.get
        #: Mark a key as just used.
        self.touch: Callable[[K], None] = self._entries.move_to_end

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[K]:
        return iter(self._entries)

    def put(self, key: K, entry: E) -> None:
        """Store ``entry`` as the most recently used; evict beyond the bound."""
        entries = self._entries
        entries[key] = entry
        entries.move_to_end(key)
        while len(entries) > self.max_entries:
            old_key, old = entries.popitem(last=False)
            if self._on_evict is not None:
                self._on_evict(old_key, old)

    def pop(self, key: K) -> E | None:
        """Remove and return the entry of ``key`` (None if absent)."""
        return self._entries.pop(key, None)

    def purge(self, now: float) -> int:
        """Drop every entry past its trust limit at ``now``: :meth:`check` would call
        it :data:`STALE`, so its next use re-reads the store whether it is here or
        not, and only its memory is kept. The bound alone would let an instance
        hold ``max_entries`` idle entries for good (a long soak's RSS grew by
        them). Returns how many went."""
        limit = self._fanout.limit
        stale = [
            key
            for key, entry in list(self._entries.items())
            if now - entry.fetched_at >= limit(entry.trusted)
        ]
        for key in stale:
            entry = self._entries.pop(key, None)
            if entry is not None and self._on_evict is not None:
                self._on_evict(key, entry)
        return len(stale)

    def check(self, entry: E, now: float, *, user_id: str, sid: str | None) -> int:
        """Whether ``entry`` (of ``user_id``, and of session handle ``sid``) may be
        used at ``now`` without a store read: :data:`STALE`, :data:`FRESH` or
        :data:`DUE`. Usable while younger than ``staleness_bound``, or younger
        than its limit (``cache_ttl`` while its epoch lasts) and not outdated by
        the revocation replica (:mod:`keyturn.fanout.instance` rules 1, 2 and 5)."""
        fanout = self._fanout
        limit = fanout.limit(entry.trusted)
        age = now - entry.fetched_at
        if age >= limit:  # never below the bound, so this is rule 2 too
            return STALE
        if age >= fanout.bound and fanout.outdated(user_id, sid, entry.fetched_at):
            return STALE
        return DUE if age >= limit / 2 else FRESH
