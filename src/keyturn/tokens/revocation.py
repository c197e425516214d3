"""Revocation of access tokens: a denylist of ``jti``s, revoked ``sid``s and
per-user cut-offs, replicated into every instance's memory.

(Over 300 lines: one class, the replica, whose sync, check and revoke paths
share its tables; half the file is the rules written down.)

The :class:`~keyturn.stores.protocols.RevocationStore` is the truth: an append-only log
that every instance writes to. :class:`RevocationReplica` keeps a replica of every
live entry in process memory, so the check on each request (:meth:`check`) is a
couple of dictionary lookups and touches no network:

- at :meth:`start` it loads every live entry;
- afterwards :meth:`ensure_fresh` fetches what changed, at most once per
  ``settings.staleness_bound`` seconds, or once per
  :data:`~keyturn.fanout.instance.RESYNC_INTERVAL` while the fan-out bus is alive and
  pushes every new entry (:meth:`apply_remote`; the trust rules are in
  :mod:`keyturn.fanout.instance`); a reconnected bus triggers a full :meth:`resync`;
- revocations made on this instance apply locally at once, before the store
  write, so the instance that revoked never accepts the token again, and are
  published after it (even when the store write failed: pushing a revocation
  can only refuse more).

Incremental sync asks for entries with a ``seq`` above the highest seen *or* a
``created_at`` within an overlap window (``OVERLAP`` seconds) before the previous
sync: on PostgreSQL a transaction that drew a lower ``seq`` can commit after one
with a higher ``seq``, and the time window catches it. Merging is idempotent.

Entries and their lifetimes:

- ``jti``: one access token, kept until its ``exp`` plus the clock leeway;
- ``sid``: a refresh family or a browser session (its public handle), kept for
  ``access_token_ttl + clock_leeway``: every token that could carry the ``sid``
  was issued before the revocation, so it has expired by then (the family or
  session itself is gone, so nothing new is minted for it);
- ``user``: the "logged out everywhere at" cut-off, kept as long as a ``sid``.

The one-second effect: a token's ``iat`` is whole seconds, so the cut-off refuses
tokens whose ``iat`` is before the *second* in which it was set (``iat <
floor(cut-off)``). A token issued earlier within that same second is not refused
by the cut-off itself; every path that sets a cut-off also revokes the ``sid`` of
each of the user's sessions and families, which covers it. A token issued after
the cut-off in that second stays valid, so signing in again at once works.

If the replica cannot sync and its last successful sync is older than its limit
(the bound, whenever the bus is not alive in the epoch of that sync),
:meth:`ensure_fresh` raises :class:`~keyturn.errors.StoreUnavailable`: the
instance fails closed rather than accept a token it could not check.

``settings.revocation_mode == "stateless"`` makes the token service skip the
access-token check; revocations are still recorded here, so switching modes back
never resurrects a revoked token.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Sequence
from typing import Final

from keyturn.clock import Clock
from keyturn.errors import InvalidToken, StoreUnavailable
from keyturn.fanout.changes import Change
from keyturn.fanout.instance import FanOut
from keyturn.settings import Settings
from keyturn.singleflight import SingleFlight
from keyturn.stores.protocols import RevocationStore
from keyturn.stores.records import Revocation, RevocationKind, Session
from keyturn.tokens.claims import AccessTokenClaims

__all__ = ["OVERLAP", "RevocationReplica"]

#: Seconds of ``created_at`` overlap in incremental sync (commit-order lag).
OVERLAP: Final = 30.0


class RevocationReplica:
    """An in-process replica of the revocation log (see the module doc).

    Args:
        store: the shared revocation log.
        settings: ``staleness_bound``, ``access_token_ttl``, ``clock_leeway``.
        clock: the time entries are stamped and expired with.
        fanout: publishes new entries and says how long a sync may be trusted;
            None: no bus (a sync is good for the staleness bound).
    """

    def __init__(
        self,
        store: RevocationStore,
        settings: Settings,
        clock: Clock,
        *,
        fanout: FanOut | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.fanout = fanout if fanout is not None else FanOut(settings)
        self.fanout.attach(revocations=self)
        self._synced_trust: int | None = None  # the bus epoch the last sync belongs to
        self._jtis: dict[str, float] = {}
        self._sids: dict[str, float] = {}
        self._cutoffs: dict[str, tuple[float, float]] = {}  # user -> (cut-off, expires_at)
        self._last_seq = 0
        self._synced_at: float | None = None  # when the last successful sync started
        self._lock = asyncio.Lock()
        self._syncs: SingleFlight[str, None] = SingleFlight()

    # --- replication ------------------------------------------------------------------

    @property
    def synced_at(self) -> float | None:
        """When the replica last synced successfully (None before :meth:`start`)."""
        return self._synced_at

    async def start(self) -> None:
        """Load every live entry.

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        async with self._lock:
            await self._sync(since=math.inf)

    async def resync(self) -> None:
        """Reload every live entry (after the bus reconnected: what was pushed
        while it was away is lost).

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        async with self._lock:
            await self._sync(since=math.inf, after_seq=0)

    def apply_remote(self, entry: Revocation) -> None:
        """Merge an entry another instance published (idempotent, memory only)."""
        self._apply(entry)

    def current(self) -> bool:
        """Whether the replica is within its limit, without waiting: past half
        of it a background sync starts. For :meth:`keyturn.fanout.instance.FanOut.outdated`."""
        synced = self._synced_at
        if synced is None:
            self._syncs.start("sync", self._sync_if_stale)
            return False
        age = self.clock.now() - synced
        limit = self._limit()
        if age >= limit / 2:
            self._syncs.start("sync", self._sync_if_stale)
        return age < limit

    def _limit(self) -> float:
        """Seconds the last sync is good for (keyturn.fanout rules 1 and 2)."""
        return self.fanout.limit(self._synced_trust, long=self.fanout.resync_interval)

    async def ensure_fresh(self) -> None:
        """Sync when the last sync is as old as its limit (``staleness_bound``, or
        the resync interval while the bus is alive); otherwise return at once
        (starting a background sync past half the limit, so under steady traffic
        no request waits for it). Concurrent callers share one sync.

        Raises:
            StoreUnavailable: the sync failed and the replica is now older than
                its limit (never started counts as infinitely old).
        """
        now = self.clock.now()
        synced = self._synced_at
        if synced is not None:
            limit = self._limit()
            if now - synced < limit:
                if now - synced >= limit / 2:
                    self._syncs.start("sync", self._sync_if_stale)
                return
        await self._syncs.run("sync", self._sync_if_stale)

    async def _sync_if_stale(self) -> None:
        async with self._lock:
            synced = self._synced_at
            if synced is not None and self.clock.now() - synced < self._limit() / 2:
                return  # another caller synced while this one waited for the lock
            try:
                since = math.inf if self._synced_at is None else self._synced_at - OVERLAP
                await self._sync(since=since)
            except StoreUnavailable:
                if self._is_fresh(self.clock.now()):
                    return  # a background sync failed; the replica is still in bounds
                raise StoreUnavailable("the revocation list cannot be synced") from None

    def _is_fresh(self, now: float) -> bool:
        synced = self._synced_at
        return synced is not None and now - synced < self._limit()

    async def _sync(self, *, since: float, after_seq: int | None = None) -> None:
        ticket = self.fanout.begin()
        started = self.clock.now()
        after = self._last_seq if after_seq is None else after_seq
        try:
            entries = await self.store.changes(after_seq=after, since=since, now=started)
        except StoreUnavailable:
            raise
        except Exception as exc:  # any store failure means we could not check: fail closed
            raise StoreUnavailable(f"the revocation store failed: {type(exc).__name__}") from exc
        for entry in entries:
            self._apply(entry)
            self._last_seq = max(self._last_seq, entry.seq)
        self._purge(started)
        self._synced_at = started
        # Entries pushed during the read were merged, so only the epoch matters.
        self._synced_trust = self.fanout.trusted(ticket, races=False)

    def _apply(self, entry: Revocation) -> None:
        if entry.kind == "jti":
            self._jtis[entry.value] = max(entry.expires_at, self._jtis.get(entry.value, 0.0))
        elif entry.kind == "sid":
            self._sids[entry.value] = max(entry.expires_at, self._sids.get(entry.value, 0.0))
        else:
            cutoff, until = self._cutoffs.get(entry.value, (0.0, 0.0))
            self._cutoffs[entry.value] = (
                max(cutoff, entry.created_at),
                max(until, entry.expires_at),
            )

    def _purge(self, now: float) -> None:
        for table in (self._jtis, self._sids):
            for key in [key for key, until in table.items() if until <= now]:
                del table[key]
        for user in [user for user, (_, until) in self._cutoffs.items() if until <= now]:
            del self._cutoffs[user]

    # --- the check ----------------------------------------------------------------------

    def check(self, claims: AccessTokenClaims) -> None:
        """Refuse a revoked token: its ``jti`` or ``sid`` is listed, or it was
        issued before its user's cut-off second. Pure memory, no I/O; call
        :meth:`ensure_fresh` first.

        Raises:
            InvalidToken: with reason ``"revoked"``.
        """
        if claims.jti in self._jtis or claims.sid in self._sids:
            raise InvalidToken("revoked")
        cutoff = self._cutoffs.get(claims.sub)
        if cutoff is not None and claims.iat < math.floor(cutoff[0]):
            raise InvalidToken("revoked")

    def is_sid_revoked(self, sid: str) -> bool:
        """Whether ``sid`` (a family or session handle) is in the replica."""
        return sid in self._sids

    def cutoff(self, user_id: str) -> float | None:
        """The user's "logged out everywhere at" time in the replica, or None."""
        entry = self._cutoffs.get(user_id)
        return entry[0] if entry is not None else None

    # --- revoking -----------------------------------------------------------------------

    async def revoke_jti(self, jti: str, exp: float) -> None:
        """Deny one access token until its ``exp`` (plus the leeway).

        Raises:
            StoreUnavailable: the store cannot be reached (applied locally anyway).
        """
        await self._record("jti", [jti], self.clock.now(), exp + self.settings.clock_leeway)

    async def revoke_sids(self, sids: Iterable[str]) -> None:
        """Deny every access token of these families or sessions.

        Raises:
            StoreUnavailable: the store cannot be reached (applied locally anyway).
        """
        now = self.clock.now()
        await self._record("sid", list(sids), now, now + self._token_window)

    async def revoke_user(self, user_id: str) -> float:
        """Cut off every access token of ``user_id`` issued before now (to the
        second; see the module doc). Returns the cut-off time.

        Raises:
            StoreUnavailable: the store cannot be reached (applied locally anyway).
        """
        now = self.clock.now()
        await self._record("user", [user_id], now, now + self._token_window)
        return now

    async def sessions_ended(self, sessions: Sequence[Session]) -> None:
        """Hook for :class:`~keyturn.sessions.manager.SessionManager`: tokens minted from
        these browser sessions (``sid`` = handle) die with them."""
        if sessions:
            await self.revoke_sids(session.handle for session in sessions)

    async def sweep(self) -> int:
        """Delete expired entries from the store; returns how many.

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        return await self.store.sweep(self.clock.now())

    @property
    def _token_window(self) -> float:
        return float(self.settings.access_token_ttl + self.settings.clock_leeway)

    async def _record(
        self, kind: RevocationKind, values: list[str], now: float, until: float
    ) -> None:
        entries = [Revocation(kind, value, now, until) for value in values]
        if not entries:
            return
        for entry in entries:  # local first: this instance refuses at once
            self._apply(entry)
        failure: StoreUnavailable | None = None
        for entry in entries:
            try:
                await self.store.add(entry)
            except StoreUnavailable as exc:
                failure = exc
                break
            except Exception as exc:
                failure = StoreUnavailable(f"the revocation store failed: {type(exc).__name__}")
                failure.__cause__ = exc
                break
        # Published even when the write failed: other instances refuse sooner.
        await self.fanout.publish(Change.revoked(entries))
        if failure is not None:
            raise failure
