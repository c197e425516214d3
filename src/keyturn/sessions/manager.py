"""Server-side browser sessions: create, validate, rotate, revoke. No framework.

(Over 300 lines: one class, the session lifecycle and its hot path, which read
best together; ids, the cache and device details are split out.)

The secret session ID and the public handle are made in :mod:`.ids`; the store
only ever sees the secret's SHA-256. A session's CSRF token is derived from the
secret (:func:`keyturn.csrf.session_csrf_token`), so it needs no storage and
changes whenever the ID rotates.

Validation is built for the hot path: a bounded in-process LRU (:mod:`.cache`)
holds what the store said about a session (and its user) for at most
``settings.staleness_bound`` seconds, or ``settings.cache_ttl`` while the fan-out
bus is alive and pushes every invalidation (the trust rules are in
:mod:`keyturn.fanout.instance`). A hit costs no I/O at all; an older entry is
re-read from the store, which stays the truth (a deleted session or a disabled
user is refused at once on the instance that revoked it, within milliseconds on
the others, and within the bound at worst). Every session this manager deletes
is published as a :class:`~keyturn.fanout.changes.Change` after the store write.
``last_seen_at`` is written at most once per ``settings.session_touch_interval``
per session, so the idle timeout is exact to within that interval.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from keyturn.clock import Clock
from keyturn.csrf import session_csrf_token
from keyturn.errors import NotAuthenticated, NotFound
from keyturn.fanout.cache import DUE, STALE
from keyturn.fanout.changes import Change
from keyturn.fanout.instance import FanOut
from keyturn.sessions.cache import CachedSession, SessionCache, ValidatedSession
from keyturn.sessions.devices import clean_ip, clean_user_agent
from keyturn.sessions.ids import hash_secret, is_handle, is_secret, new_handle, new_secret
from keyturn.settings import Settings
from keyturn.singleflight import SingleFlight
from keyturn.stores.protocols import SessionStore, UserStore
from keyturn.stores.records import Session, User

__all__ = ["IssuedSession", "SessionListener", "SessionManager", "ValidatedSession"]


@dataclass(frozen=True)
class IssuedSession:
    """A new session: ``secret`` goes into the cookie and nowhere else."""

    secret: str = dataclasses.field(repr=False)
    session: Session
    csrf_token: str = dataclasses.field(repr=False)
    evicted: list[Session]


class SessionListener(Protocol):
    """Told about every session that ended by revocation (sign-out, eviction,
    revoke by handle, sign-out everywhere, disabled user); not about expiry.
    The revocation list uses it so access tokens minted from a session
    (``sid`` = its handle) die with it."""

    async def sessions_ended(self, sessions: Sequence[Session]) -> None:
        """Called after ``sessions`` were deleted from the store."""
        ...


class SessionManager:
    """Browser sessions over a :class:`SessionStore`, with a local cache.

    Args:
        sessions: where sessions live (the truth).
        users: where accounts live; a disabled or removed user ends the session.
        settings: lifetimes, the per-user cap, the touch interval, the staleness bound.
        clock: the time every expiry is measured by.
        cache_size: how many validated sessions this instance keeps (LRU).
        listener: told about every revoked session (see :class:`SessionListener`).
        fanout: publishes ended sessions and decides how long entries are
            trusted; None: no bus (the plain staleness bound).
    """

    def __init__(
        self,
        sessions: SessionStore,
        users: UserStore,
        settings: Settings,
        clock: Clock,
        *,
        cache_size: int = 100_000,
        listener: SessionListener | None = None,
        fanout: FanOut | None = None,
    ) -> None:
        self.listener = listener
        self.fanout = fanout if fanout is not None else FanOut(settings)
        self.fanout.attach(sessions=self)
        if cache_size < 1:
            raise ValueError("cache_size must be at least 1")
        self.store = sessions
        self.users = users
        self.settings = settings
        self.clock = clock
        self.cache = SessionCache(self.fanout, max_entries=cache_size)
        # One store read per stale session, however many requests wait on it.
        self._loads: SingleFlight[str, ValidatedSession] = SingleFlight()

    # --- lifecycle ----------------------------------------------------------------

    async def create(
        self,
        user: User,
        *,
        remember: bool = False,
        ip: str | None = None,
        user_agent: str | None = None,
        auth_time: float | None = None,
        amr: tuple[str, ...] = ("pwd",),
    ) -> IssuedSession:
        """Start a session for a user who has just proved who they are, with
        ``amr`` the RFC 8176 methods they used.

        The ID is always generated here, never taken from the client. When the
        user is over ``max_sessions_per_user``, the oldest sessions are evicted.

        Raises:
            NotAuthenticated: the account is disabled.
            StoreUnavailable: the session store cannot be reached.
        """
        if user.disabled:
            raise NotAuthenticated()
        now = self.clock.now()
        if remember:
            idle, max_age = self.settings.remember_idle_timeout, self.settings.remember_max_age
        else:
            idle, max_age = self.settings.session_idle_timeout, self.settings.session_max_age
        secret = new_secret()
        session = Session(
            id_hash=hash_secret(secret),
            handle=new_handle(),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            idle_timeout=idle,
            expires_at=now + max_age,
            auth_time=now if auth_time is None else auth_time,
            remember=remember,
            ip=clean_ip(ip),
            user_agent=clean_user_agent(user_agent),
            amr=tuple(amr),
        )
        return await self._issue(secret, session, user)

    async def _issue(self, secret: str, session: Session, user: User) -> IssuedSession:
        ticket = self.fanout.begin()
        evicted = await self.store.create(session, max_per_user=self.settings.max_sessions_per_user)
        for old in evicted:
            self.forget(old.id_hash)
        await self._ended(evicted)
        now = self.clock.now()
        trusted = self.fanout.trusted(ticket)
        entry = CachedSession(ValidatedSession(session, user), now, now, now, trusted)
        self.cache.remember(session.id_hash, entry)
        return IssuedSession(secret, session, session_csrf_token(secret), evicted)

    async def validate(self, secret: str) -> ValidatedSession:
        """The live session (and its user) a secret session ID belongs to.

        Malformed IDs are refused without a store call. An expired session is
        deleted; a disabled or removed user has all sessions deleted.

        Raises:
            NotAuthenticated: unknown, expired or revoked session, or disabled user.
            StoreUnavailable: the store is needed (cache miss or stale entry) but
                cannot be reached; nothing is accepted that could not be checked.
        """
        if not is_secret(secret):
            raise NotAuthenticated()
        id_hash = hash_secret(secret)
        now = self.clock.now()
        cached = self.cache.entries
        entry = cached.get(id_hash)
        state = STALE
        if entry is not None:
            session = entry.validated.session
            state = cached.check(entry, now, user_id=session.user_id, sid=session.handle)
        if entry is not None and state:
            session = entry.validated.session
            if now >= session.expires_at:
                await self._drop(id_hash)
                raise NotAuthenticated()
            if now < entry.last_seen + session.idle_timeout:
                cached.touch(id_hash)
                if state == DUE:
                    # Refresh ahead, in the background: under steady traffic the
                    # entry never goes stale and no request waits for the store.
                    current = entry
                    self._loads.start(id_hash, lambda: self._refresh(id_hash, current, now))
                await self._seen(id_hash, entry, now)
                return entry.validated
            # Idle here; another instance may have seen the session more recently.
        return await self._loads.run(id_hash, lambda: self._refresh(id_hash, entry, now))

    async def _refresh(
        self, id_hash: str, entry: CachedSession | None, now: float
    ) -> ValidatedSession:
        mark = self.cache.begin_load()
        try:
            return await self._load(id_hash, entry, now, mark)
        finally:
            self.cache.end_load(mark)

    async def _load(
        self, id_hash: str, entry: CachedSession | None, now: float, mark: int
    ) -> ValidatedSession:
        ticket = self.fanout.begin()
        session = await self.store.get(id_hash)
        if session is None:
            self.forget(id_hash)
            raise NotAuthenticated()
        stored_last_seen = session.last_seen_at
        if entry is not None and entry.last_seen > session.last_seen_at:
            session = dataclasses.replace(session, last_seen_at=entry.last_seen)
        if session.is_expired(now):
            await self._drop(id_hash)
            raise NotAuthenticated()
        user = await self.users.get(session.user_id)
        if user is None or user.disabled:
            ended = await self.store.delete_for_user(session.user_id)
            self.forget_user(session.user_id)
            await self._ended(ended)
            raise NotAuthenticated()
        if self.cache.ended_since(mark, id_hash, user.id):
            # Signed out while this read was in flight: what it read is gone.
            raise NotAuthenticated()
        fresh = CachedSession(
            ValidatedSession(session, user),
            now,
            session.last_seen_at,
            stored_last_seen,
            self.fanout.trusted(ticket),  # no await between this and caching
        )
        self.cache.remember(id_hash, fresh)
        await self._seen(id_hash, fresh, now)
        return fresh.validated

    async def _seen(self, id_hash: str, entry: CachedSession, now: float) -> None:
        entry.last_seen = max(entry.last_seen, now)
        previous = entry.stored_last_seen
        if now - previous >= self.settings.session_touch_interval:
            entry.stored_last_seen = now  # before the await: concurrent requests skip it
            try:
                await self.store.touch(id_hash, now)
            except BaseException:
                entry.stored_last_seen = previous
                raise

    async def _drop(self, id_hash: str) -> None:
        self.forget(id_hash)
        deleted = await self.store.delete(id_hash)
        self.forget(id_hash)  # a read that began before the delete must not re-cache it
        if deleted is not None:
            await self.fanout.publish(Change.sessions_ended([deleted]))

    async def rotate(self, secret: str, *, auth_time: float | None = None) -> IssuedSession:
        """Give a live session a new secret ID (after a privilege or password change).

        The old secret stops working at once. The sign-in keeps its public
        handle, creation time and absolute expiry; ``auth_time`` is updated when
        given (the password was just re-checked).

        Raises:
            NotAuthenticated: ``secret`` is not a live session (or was rotated
                concurrently).
            StoreUnavailable: the store cannot be reached.
        """
        current = await self.validate(secret)
        old = current.session
        self.forget(old.id_hash)
        deleted = await self.store.delete(old.id_hash)
        self.forget(old.id_hash)  # a read that began before the delete must not re-cache it
        if deleted is None:
            raise NotAuthenticated()
        await self.fanout.publish(Change.sessions_ended([old]))
        secret = new_secret()
        session = dataclasses.replace(
            old,
            id_hash=hash_secret(secret),
            last_seen_at=self.clock.now(),
            auth_time=old.auth_time if auth_time is None else auth_time,
        )
        return await self._issue(secret, session, current.user)

    async def revoke(self, secret: str) -> Session | None:
        """End the session of this secret (sign out); None if there was none.

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        if not is_secret(secret):
            return None
        id_hash = hash_secret(secret)
        self.forget(id_hash)
        session = await self.store.delete(id_hash)
        self.forget(id_hash)  # a read that began before the delete must not re-cache it
        if session is not None:
            await self._ended([session])
        return session

    async def revoke_handle(self, user_id: str, handle: str) -> Session:
        """End one of a user's sessions, named by its public handle.

        Raises:
            NotFound: no such session, or it belongs to another user (the same
                answer, so handles of other users cannot be probed).
            StoreUnavailable: the store cannot be reached.
        """
        if not is_handle(handle):
            raise NotFound()
        session = await self.store.get_by_handle(handle)
        if session is None or session.user_id != user_id:
            raise NotFound()
        self.forget(session.id_hash)
        deleted = await self.store.delete(session.id_hash)
        self.forget(session.id_hash)  # a read that began before the delete must not re-cache it
        if deleted is None:
            raise NotFound()
        await self._ended([deleted])
        return deleted

    async def revoke_all(self, user_id: str, *, keep_secret: str | None = None) -> list[Session]:
        """End every session of a user, except the one of ``keep_secret`` if given.

        Returns:
            The ended sessions, oldest first.

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        keep = hash_secret(keep_secret) if is_secret(keep_secret) else None
        self.cache.forget_user(user_id, keep=keep)
        ended = await self.store.delete_for_user(user_id, keep_id_hash=keep)
        self.cache.forget_user(user_id, keep=keep)  # and reads that began meanwhile
        await self._ended(ended)
        return ended

    async def list_for_user(self, user_id: str) -> list[Session]:
        """A user's live sessions, oldest first, with the newest activity this
        instance has seen.

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        now = self.clock.now()
        live: list[Session] = []
        for session in await self.store.list_for_user(user_id):
            entry = self.cache.get(session.id_hash)
            if entry is not None and entry.last_seen > session.last_seen_at:
                session = dataclasses.replace(session, last_seen_at=entry.last_seen)
            if not session.is_expired(now):
                live.append(session)
        return live

    async def sweep(self) -> int:
        """Delete every expired session from the store; returns how many.

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        return await self.store.sweep(self.clock.now())

    async def _ended(self, sessions: Sequence[Session]) -> None:
        if not sessions:
            return
        await self.fanout.publish(Change.sessions_ended(sessions))
        if self.listener is not None:
            await self.listener.sessions_ended(sessions)

    # --- the local cache ------------------------------------------------------------

    def forget(self, id_hash: str) -> None:
        """Drop one cached session (e.g. on a :class:`~keyturn.fanout.changes.Change`
        from another instance)."""
        self.cache.forget(id_hash)

    def forget_user(self, user_id: str) -> None:
        """Drop every cached session of a user (after disable or sign-out everywhere)."""
        self.cache.forget_user(user_id)
