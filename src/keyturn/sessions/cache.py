"""This instance's cache of validated sessions, and what it has seen of them.

A :class:`~keyturn.fanout.cache.TrustedCache` keyed by ``id_hash`` (the trust
rules are :mod:`keyturn.fanout`'s), with an index by user so that a sign-out
everywhere or a disabled account drops every cached session of the user at once.
Each entry also carries the newest activity seen here (``last_seen``) and the
newest ``last_seen_at`` known to be in the store, so the store is touched at most
once per ``session_touch_interval``.
"""

from __future__ import annotations

from dataclasses import dataclass

from keyturn.fanout.cache import TrustedCache
from keyturn.fanout.instance import FanOut
from keyturn.stores.records import Session, User

__all__ = ["CachedSession", "SessionCache", "ValidatedSession"]


@dataclass(frozen=True)
class ValidatedSession:
    """A live session and its (enabled) user, as last read from the store."""

    session: Session
    user: User


@dataclass(slots=True)
class CachedSession:
    """One cached session."""

    validated: ValidatedSession
    fetched_at: float  # when the store was last asked
    last_seen: float  # newest activity seen on this instance
    stored_last_seen: float  # newest last_seen_at known to be in the store
    trusted: int | None = None  # the bus epoch it may be trusted under (keyturn.fanout)


class SessionCache:
    """Validated sessions by ``id_hash``, bounded, indexed by user.

    Args:
        fanout: the trust rules.
        max_entries: how many sessions to keep (LRU).
    """

    def __init__(self, fanout: FanOut, *, max_entries: int) -> None:
        self.entries: TrustedCache[str, CachedSession] = TrustedCache(
            fanout, max_entries=max_entries, on_evict=self._evicted
        )
        self._by_user: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, id_hash: str) -> CachedSession | None:
        """The cached session of ``id_hash``, however old, or None."""
        return self.entries.get(id_hash)

    def remember(self, id_hash: str, entry: CachedSession) -> None:
        """Cache ``entry`` (replacing an older one of the same ``id_hash``)."""
        self.forget(id_hash)
        self.entries.put(id_hash, entry)
        self._by_user.setdefault(entry.validated.user.id, set()).add(id_hash)

    def forget(self, id_hash: str) -> None:
        """Drop one cached session."""
        entry = self.entries.pop(id_hash)
        if entry is not None:
            self._unindex(id_hash, entry)

    def forget_user(self, user_id: str, *, keep: str | None = None) -> None:
        """Drop every cached session of a user (but ``keep``, an ``id_hash``)."""
        for id_hash in list(self._by_user.get(user_id, ())):
            if id_hash != keep:
                self.forget(id_hash)

    def _evicted(self, id_hash: str, entry: CachedSession) -> None:
        self._unindex(id_hash, entry)

    def _unindex(self, id_hash: str, entry: CachedSession) -> None:
        user_id = entry.validated.user.id
        hashes = self._by_user.get(user_id)
        if hashes is not None:
            hashes.discard(id_hash)
            if not hashes:
                del self._by_user[user_id]
