"""Fan-out: every instance keeps its caches in memory and hears of changes made elsewhere.

(Over 300 lines: the trust rules and the one class that applies them, kept
side by side on purpose; the wire format and the buses are modules of their own.)

Each keyturn instance caches validated sessions (:mod:`keyturn.sessions.manager`), users
(:mod:`keyturn.tokens.bearer`), the revocation list (:mod:`keyturn.tokens.revocation`) and the
key ring (:mod:`keyturn.keys.rotation`), so a request touches no network. A
change made by another instance, or by the CLI in another process, reaches them
as a :class:`~keyturn.fanout.changes.Change` (compact JSON, :mod:`keyturn.fanout.changes`) on a
:class:`~keyturn.fanout.changes.ChangeBus` (Redis pub/sub, PostgreSQL LISTEN/NOTIFY, or
a polled change table for SQLite; see :mod:`keyturn.fanout.buses`) within milliseconds.
:class:`FanOut` is this instance's end of it: it publishes what this instance
changed (after the store write), applies what others changed, and decides how
long a cache entry may be trusted.

A change only ever *takes trust away*: it drops cache entries, adds revocation
entries or makes the key ring re-read the store. A lost, late, duplicated or
forged message can cost a store read or refuse a credential, never accept one.

Trust rules (``bound`` = ``settings.staleness_bound``, ``ttl`` = ``settings.cache_ttl``):

1. An entry read from the store while the bus was alive, with no invalidation
   applied on this instance while the read was in flight, is tagged with the
   bus *epoch*: one unbroken period in which the channel was verified alive
   (a heartbeat answered within ``bound / 2``). Such an entry is trusted for
   ``ttl`` (the revocation replica for :data:`RESYNC_INTERVAL`) as long as the
   bus is still in that epoch: every invalidation since the read was pushed.
2. Any other entry (read while the bus was down, before it (re)connected, or
   while an invalidation raced the read: :attr:`FanOut.generation` moved) is
   trusted for ``bound`` only, as without fan-out.
3. When the bus is lost (an error, or no heartbeat answer for ``bound / 2``),
   the epoch ends at once: every entry falls back to rule 2, so entries older
   than ``bound`` are re-read, and a store that is down too means
   :class:`~keyturn.errors.StoreUnavailable` (503), never a stale accept.
4. A reconnection starts a new epoch: the revocation replica is reloaded in
   full and entries of older epochs are never trusted past ``bound`` again.
5. Belt and braces: an entry older than ``bound`` trusted under rule 1 is still
   re-read when the revocation replica (resynced from the durable store every
   :data:`RESYNC_INTERVAL`) lists its session's handle or a cut-off of its user
   at or after its read, or is itself older than that interval. So even a
   publish that never happened (the writer lost its own bus) is caught within
   that interval for sign-outs, disabled users and password changes.
6. Every invalidation is applied on the instance that made it too, after its
   store write, so a read racing a local sign-out is not trusted long either.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Coroutine
from typing import Any, Final, Protocol

from keyturn.fanout.changes import Change, ChangeBus, decode, encode_chunks
from keyturn.settings import Settings
from keyturn.stores.records import Revocation

__all__ = ["RESYNC_INTERVAL", "FanOut", "Ticket"]

logger = logging.getLogger("keyturn.fanout")

#: Seconds between full-trust resyncs of the revocation replica while the bus is alive.
RESYNC_INTERVAL: Final = 30.0
#: Seconds a publish may take before it is queued for retry in the background.
PUBLISH_TIMEOUT: Final = 0.5
#: Seconds :meth:`FanOut.close` keeps trying to deliver queued changes.
FLUSH_TIMEOUT: Final = 3.0
#: Changes kept for retry while the bus is unreachable; older ones are dropped.
OUTBOX_LIMIT: Final = 10_000

# --- what the changes are applied to ---------------------------------------------------


class SessionCache(Protocol):
    """The session cache (:class:`keyturn.sessions.manager.SessionManager`)."""

    def forget(self, id_hash: str) -> None: ...
    def forget_user(self, user_id: str) -> None: ...


class UserCache(Protocol):
    """The bearer path's user cache (:class:`keyturn.tokens.bearer.BearerAuthenticator`)."""

    def forget_user(self, user_id: str) -> None: ...


class RevocationList(Protocol):
    """The revocation list as fan-out sees it: what a remote entry is merged
    into, and what rule 5 asks (its replica is
    :class:`keyturn.tokens.revocation.RevocationReplica`)."""

    def current(self) -> bool: ...
    def apply_remote(self, entry: Revocation) -> None: ...
    def is_sid_revoked(self, sid: str) -> bool: ...
    def cutoff(self, user_id: str) -> float | None: ...
    async def resync(self) -> None: ...


class KeyRingSource(Protocol):
    """The signing keys (:class:`keyturn.keys.rotation.KeyManager`)."""

    async def reload(self) -> bool: ...


#: What a cache notes before a store read: ``(generation, epoch)``.
Ticket = tuple[int, int | None]


class FanOut:
    """This instance's end of the bus: publish, apply, and the trust rules.

    Without a bus every entry gets the plain ``staleness_bound`` (rule 2), and
    publishing only applies the change locally.

    Args:
        settings: ``staleness_bound`` and ``cache_ttl``.
        bus: the channel, or None (fan-out off).
        origin: this instance's id in messages (random by default).
    """

    def __init__(
        self, settings: Settings, *, bus: ChangeBus | None = None, origin: str | None = None
    ) -> None:
        self.bus = bus
        self.origin = origin or secrets.token_hex(8)
        self.bound = float(settings.staleness_bound)
        self.cache_ttl = max(float(settings.cache_ttl), self.bound)
        self.resync_interval = max(min(RESYNC_INTERVAL, self.cache_ttl), self.bound)
        #: Bumped by every session or user invalidation applied here (rule 2).
        self.generation = 0
        self.published = self.received = self.dropped = 0
        self._sessions: SessionCache | None = None
        self._users: UserCache | None = None
        self._revocations: RevocationList | None = None
        self._keys: KeyRingSource | None = None
        self._outbox: deque[str] = deque()
        self._sender: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._epochs = 0  # epochs begun since start

    def attach(
        self,
        *,
        sessions: SessionCache | None = None,
        users: UserCache | None = None,
        revocations: RevocationList | None = None,
        keys: KeyRingSource | None = None,
    ) -> None:
        """Name the caches that changes apply to (each component attaches itself)."""
        self._sessions = sessions or self._sessions
        self._users = users or self._users
        self._revocations = revocations or self._revocations
        self._keys = keys or self._keys

    async def start(self) -> None:
        """Start listening (in the background; never fails on an unreachable bus)."""
        if self.bus is not None:
            await self.bus.start(self._receive, self._connected)

    async def close(self, *, flush_timeout: float = FLUSH_TIMEOUT) -> None:
        """Deliver queued changes (for up to ``flush_timeout`` seconds: a CLI
        process exits right after), then stop listening."""
        if self._sender is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                async with asyncio.timeout(flush_timeout):
                    await asyncio.shield(self._sender)
            self._sender.cancel()
            self._sender = None
        if self._outbox:
            logger.warning(
                "%d change(s) could not be published; other instances will notice "
                "within %.0f s (the revocation resync) or %.0f s (cache ttl)",
                len(self._outbox),
                self.resync_interval,
                self.cache_ttl,
            )
            self._outbox.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        # Awaited, so no store read is left running when the caller closes the store.
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        if self.bus is not None:
            await self.bus.close()

    # --- the trust rules (see the module doc) ------------------------------------------

    @property
    def epoch(self) -> int | None:
        """The bus's current epoch, or None (no bus, or not verified alive)."""
        return None if self.bus is None else self.bus.epoch

    def begin(self) -> Ticket:
        """Note the state before a store read (pass it to :meth:`trusted` after)."""
        return self.generation, self.epoch

    def trusted(self, ticket: Ticket, *, races: bool = True) -> int | None:
        """The epoch an entry read since ``ticket`` may be trusted under (rule 1),
        or None (rule 2). Call it after the read, with no ``await`` before caching.
        ``races=False`` ignores invalidations during the read (for merges)."""
        generation, epoch = ticket
        if epoch is None or epoch != self.epoch:
            return None
        if races and generation != self.generation:
            return None
        return epoch

    def limit(self, trusted: int | None, *, long: float | None = None) -> float:
        """Seconds an entry tagged ``trusted`` may be used now: ``long`` (default
        ``cache_ttl``) while its epoch lasts, else ``staleness_bound``."""
        if trusted is not None and trusted == self.epoch:
            return self.cache_ttl if long is None else long
        return self.bound

    def outdated(self, user_id: str, sid: str | None, fetched_at: float) -> bool:
        """Rule 5, for an entry older than ``staleness_bound``: the revocation
        replica is itself past its limit (it cannot vouch), or lists ``sid``, or
        a cut-off of the user at or after ``fetched_at``. Pure memory (a stale
        replica starts a background sync)."""
        replica = self._revocations
        if replica is None:
            return False
        if not replica.current():
            return True
        if sid is not None and replica.is_sid_revoked(sid):
            return True
        cutoff = replica.cutoff(user_id)
        return cutoff is not None and cutoff >= fetched_at

    # --- publishing --------------------------------------------------------------------

    async def publish(self, change: Change) -> None:
        """Apply ``change`` here, then send it to every other instance. Never
        raises: an unreachable bus queues it for background retries."""
        self.apply(change, remote=False)
        bus = self.bus
        if bus is None:
            return
        try:
            messages = encode_chunks(change, self.origin, max_bytes=bus.max_message_bytes)
        except ValueError:
            logger.exception("cannot encode a %s change", change.kind)
            return
        if self._outbox:  # earlier changes are still waiting: keep the order
            self._enqueue(messages)
            return
        for index, message in enumerate(messages):
            try:
                async with asyncio.timeout(PUBLISH_TIMEOUT):
                    await bus.publish(message)
            except Exception as exc:
                logger.warning("cannot publish a change (%s); retrying in the background", exc)
                self._enqueue(messages[index:])
                return
            self.published += 1

    def _enqueue(self, messages: list[str]) -> None:
        for message in messages:
            if len(self._outbox) >= OUTBOX_LIMIT:
                self._outbox.popleft()
                self.dropped += 1
            self._outbox.append(message)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(
                self._send_queued(), name="keyturn-fanout-outbox"
            )

    async def _send_queued(self) -> None:
        delay = 0.05
        while self._outbox and self.bus is not None:
            try:
                async with asyncio.timeout(PUBLISH_TIMEOUT):
                    await self.bus.publish(self._outbox[0])
            except Exception:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            self._outbox.popleft()
            self.published += 1
            delay = 0.05

    # --- applying ----------------------------------------------------------------------

    def apply(self, change: Change, *, remote: bool) -> None:
        """Apply a change to this instance's caches (``remote``: made elsewhere;
        a local change has already updated the replica and the key ring)."""
        if change.kind == "sessions":
            self.generation += 1
            if self._sessions is not None:
                for id_hash in change.id_hashes:
                    self._sessions.forget(id_hash)
        elif change.kind == "user":
            self.generation += 1
            user_id = change.user_id
            if user_id is not None:
                if self._sessions is not None:
                    self._sessions.forget_user(user_id)
                if self._users is not None:
                    self._users.forget_user(user_id)
        elif change.kind == "revocations":
            if remote and self._revocations is not None:
                for entry in change.revocations:
                    self._revocations.apply_remote(entry)
        elif remote and self._keys is not None:
            self._spawn(self._keys.reload(), "reload the signing keys")

    def _receive(self, message: str) -> None:
        try:
            origin, change = decode(message)
        except ValueError as exc:  # json.JSONDecodeError is a ValueError too
            logger.warning("ignoring a malformed change message: %s", exc)
            return
        if origin == self.origin:
            return  # our own: applied when it was published
        self.received += 1
        self.apply(change, remote=True)

    def _connected(self) -> None:
        """A new epoch: whatever was published while we were away is lost (rule 4).
        The first one needs nothing: no entry was trusted under an earlier epoch."""
        self._epochs += 1
        if self._epochs == 1:
            return
        if self._revocations is not None:
            self._spawn(self._revocations.resync(), "resync the revocation list")
        if self._keys is not None:
            self._spawn(self._keys.reload(), "reload the signing keys")

    def _spawn(self, work: Coroutine[Any, Any, object], what: str) -> None:
        def finished(task: asyncio.Task[object]) -> None:
            self._tasks.discard(task)
            if not task.cancelled() and task.exception() is not None:
                logger.warning("cannot %s after a change: %s", what, task.exception())

        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(finished)

    # --- housekeeping ------------------------------------------------------------------

    async def sweep(self, now: float) -> int:
        """Trim the bus's change table (polling bus); returns rows deleted.

        Raises:
            StoreUnavailable: the database cannot be reached.
        """
        return 0 if self.bus is None else await self.bus.sweep(now)

    def status(self) -> dict[str, Any]:
        """For health and metrics: the bus, whether it is alive, since when, and counters."""
        bus = self.bus
        return {
            "bus": "off" if bus is None else bus.name,
            "alive": self.epoch is not None,
            "alive_since": None if bus is None else bus.alive_since,
            "queued": len(self._outbox),
            "published": self.published,
            "received": self.received,
            "dropped": self.dropped,
        }
