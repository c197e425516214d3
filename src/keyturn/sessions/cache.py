"""This instance's cache of validated sessions, and what it has seen of them.

A :class:`~keyturn.fanout.cache.TrustedCache` keyed by ``id_hash`` (the trust
rules are :mod:`keyturn.fanout`'s), with an index by user so that a sign-out
everywhere or a disabled account drops every cached session of the user at once.
Each entry also carries the newest activity seen here (``last_seen``) and the
newest ``last_seen_at`` known to be in the store, so the store is touched at most
once per ``session_touch_interval``.

A store read takes time, and a sign-out may land while one is in flight: the read
then returns a session that no longer exists. :meth:`SessionCache.begin_load` and
:meth:`SessionCache.ended_since` let the loader notice that, so a read that began
before a sign-out never puts the session back into the cache.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

from keyturn.fanout.cache import TrustedCache
from keyturn.fanout.instance import FanOut
from keyturn.stores.records import Session, User

__all__ = ["CachedSession", "SessionCache", "ValidatedSession"]


@dataclass(frozen=True)
class ValidatedSession:
    """A live session and its (enabled) user, as last read from the store.

    ``memo`` holds what callers derive from this read and may reuse until the
    session is read again (the web layer keeps the caller's principal and its
    whoami answer there): a new read is a new object, so nothing outlives it.
    """

    session: Session
    user: User
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


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
        # What was forgotten while loads were in flight: key -> sequence number.
        # Only kept while some load that began earlier is still running.
        self._sequence = 0
        self._forgotten: dict[tuple[str, str], int] = {}
        self._loads: collections.Counter[int] = collections.Counter()
        self._kept: dict[int, str] = {}  # a sign-out everywhere but one session

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, id_hash: str) -> CachedSession | None:
        """The cached session of ``id_hash``, however old, or None."""
        return self.entries.get(id_hash)

    def remember(self, id_hash: str, entry: CachedSession) -> None:
        """Cache ``entry`` (replacing an older one of the same ``id_hash``)."""
        old = self.entries.pop(id_hash)
        if old is not None:
            self._unindex(id_hash, old)
        self.entries.put(id_hash, entry)
        self._by_user.setdefault(entry.validated.user.id, set()).add(id_hash)

    def forget(self, id_hash: str) -> None:
        """Drop one cached session (it ended, or may have)."""
        self._note(("session", id_hash))
        entry = self.entries.pop(id_hash)
        if entry is not None:
            self._unindex(id_hash, entry)

    def purge(self, now: float) -> int:
        """Drop the sessions whose trust has run out (see :meth:`TrustedCache.purge`)."""
        return self.entries.purge(now)

    def forget_user(self, user_id: str, *, keep: str | None = None) -> None:
        """Drop every cached session of a user (but ``keep``, an ``id_hash``)."""
        self._note(("user", user_id), keep=keep)
        for id_hash in list(self._by_user.get(user_id, ())):
            if id_hash != keep:
                self.forget(id_hash)

    # --- loads racing with sign-outs ----------------------------------------------

    def begin_load(self) -> int:
        """Mark the start of a store read; pass the mark to :meth:`ended_since`
        and then to :meth:`end_load`."""
        self._loads[self._sequence] += 1
        return self._sequence

    def ended_since(self, mark: int, id_hash: str, user_id: str) -> bool:
        """Whether the session ``id_hash`` of ``user_id`` was forgotten (alone or
        with all of its user's sessions) after the load that took ``mark`` began."""
        session = self._forgotten.get(("session", id_hash), -1)
        user = self._forgotten.get(("user", user_id), -1)
        if user > mark and self._kept.get(user) == id_hash:
            user = -1
        return session > mark or user > mark

    def end_load(self, mark: int) -> None:
        """The load that took ``mark`` is over; forget what no load needs."""
        self._loads[mark] -= 1
        if self._loads[mark] <= 0:
            del self._loads[mark]
        if not self._loads:
            self._forgotten.clear()
            self._kept.clear()
        else:
            oldest = min(self._loads)
            for key, sequence in list(self._forgotten.items()):
                if sequence <= oldest:
                    del self._forgotten[key]
                    self._kept.pop(sequence, None)

    def _note(self, key: tuple[str, str], *, keep: str | None = None) -> None:
        if not self._loads:
            return
        self._sequence += 1
        self._forgotten[key] = self._sequence
        if keep is not None:
            self._kept[self._sequence] = keep

    def _evicted(self, id_hash: str, entry: CachedSession) -> None:
        self._unindex(id_hash, entry)

    def _unindex(self, id_hash: str, entry: CachedSession) -> None:
        user_id = entry.validated.user.id
        hashes = self._by_user.get(user_id)
        if hashes is not None:
            hashes.discard(id_hash)
            if not hashes:
                del self._by_user[user_id]
