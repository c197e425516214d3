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
from typing import Generic, Protocol, TypeVar

from keyturn.fanout.instance import FanOut

__all__ = ["Fetched", "TrustedCache"]


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
        on_evict: called with every entry pushed out by the bound (not with
            entries the caller pops), so an index beside the cache stays right.

    Raises:
        ValueError: ``max_entries`` is below 1.
    """

    __slots__ = ("_entries", "_fanout", "_on_evict", "max_entries")

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

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[K]:
        return iter(self._entries)

    def get(self, key: K) -> E | None:
        """The entry of ``key`` however old (the caller asks :meth:`usable`), or None."""
        return self._entries.get(key)

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

    def touch(self, key: K) -> None:
        """Mark ``key`` as just used."""
        self._entries.move_to_end(key)

    def limit(self, entry: E | None) -> float:
        """Seconds ``entry`` may be used (``cache_ttl`` while its epoch lasts, else
        ``staleness_bound``; the bound for no entry)."""
        return self._fanout.bound if entry is None else self._fanout.limit(entry.trusted)

    def usable(self, entry: E, now: float, limit: float, *, user_id: str, sid: str | None) -> bool:
        """Whether ``entry`` (of ``user_id``, and of session handle ``sid``) may be
        used at ``now`` without a store read, ``limit`` being :meth:`limit`: younger
        than the bound, or younger than ``limit`` and not outdated by the
        revocation replica (:mod:`keyturn.fanout.instance` rules 1, 2 and 5)."""
        age = now - entry.fetched_at
        if age < self._fanout.bound:
            return True
        if age >= limit:
            return False
        return not self._fanout.outdated(user_id, sid, entry.fetched_at)

    @staticmethod
    def due(entry: E, now: float, limit: float) -> bool:
        """Whether ``entry`` is in the second half of its limit: time to re-read it
        in the background, so under steady traffic nobody waits for the store."""
        return now - entry.fetched_at >= limit / 2
