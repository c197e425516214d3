"""Bearer authentication: the hot path of every token-authenticated request.

Framework-free. :class:`BearerAuthenticator` turns an access token into its
claims and a :class:`~keyturn.principal.Principal`, and in the common case does
no I/O: the verifier caches verified tokens, the revocation replica is in
memory, and users come from an in-process LRU cache refreshed at most once per
``staleness_bound`` (ahead of time, by one shared read), or per ``cache_ttl``
while the fan-out bus is alive and pushes every change of a user (the trust
rules are in :mod:`keyturn.fanout.instance`). Signature checks
follow key rotations made elsewhere (other instances, the CLI) by re-reading
the key ring.

Every bearer-authenticated request calls it as :attr:`Keyturn.bearer
<keyturn.runtime.Keyturn.bearer>`; the grants warm the user cache through
:meth:`BearerAuthenticator.remember_user`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from keyturn.clock import Clock
from keyturn.errors import InvalidToken
from keyturn.fanout.cache import DUE, TrustedCache
from keyturn.fanout.instance import FanOut
from keyturn.keys.rotation import KeyManager
from keyturn.principal import Principal
from keyturn.settings import Settings
from keyturn.singleflight import SingleFlight
from keyturn.stores.protocols import UserStore
from keyturn.stores.records import User
from keyturn.tokens.access import TokenVerifier
from keyturn.tokens.claims import AccessTokenClaims
from keyturn.tokens.revocation import RevocationReplica

__all__ = ["BearerAuthenticator"]


@dataclass(slots=True)
class _CachedUser:
    user: User | None
    fetched_at: float
    trusted: int | None = None  # the bus epoch it may be trusted under (keyturn.fanout)


class BearerAuthenticator:
    """Access-token verification with key reloads, and the bearer path's user cache.

    Args:
        revocations: the in-process revocation replica.
        users: accounts (read through the local cache).
        verifier: returns the access-token verifier.
        keys: returns the key manager, to follow rotations (None: a fixed ring).
        settings: ``revocation_mode`` and ``staleness_bound``.
        clock: the time.
        user_cache_size: how many users to keep (LRU).
        fanout: how long a cached user may be trusted (and where changes of
            users arrive); None: no bus, the plain staleness bound.
    """

    def __init__(
        self,
        *,
        revocations: RevocationReplica,
        users: UserStore,
        verifier: Callable[[], TokenVerifier],
        keys: Callable[[], KeyManager] | None,
        settings: Settings,
        clock: Clock,
        user_cache_size: int,
        fanout: FanOut | None = None,
    ) -> None:
        self.revocations = revocations
        self.users = users
        self._verifier = verifier
        self._keys = keys
        self.settings = settings
        self.clock = clock
        self.strict = settings.revocation_mode == "strict"
        self.fanout = fanout if fanout is not None else FanOut(settings)
        self.fanout.attach(users=self)
        self._user_cache: TrustedCache[str, _CachedUser] = TrustedCache(
            self.fanout, max_entries=max(1, user_cache_size)
        )
        self._user_loads: SingleFlight[str, User | None] = SingleFlight()

    async def authenticate(self, token: str) -> tuple[AccessTokenClaims, Principal]:
        """The claims and caller of a bearer token.

        Signature and claims (cached per token string), then in ``strict`` mode
        the revocation replica, then the user (cached for ``staleness_bound``):
        a disabled or deleted user is refused in either mode.

        Raises:
            InvalidToken: invalid, expired, revoked, or its user is gone/disabled.
            StoreUnavailable: the replica or the user cache is stale past the
                bound and the store cannot be reached (fail closed).
        """
        claims = await self.verify(token)
        if self.strict:
            await self.revocations.ensure_fresh()
            self.revocations.check(claims)
        if claims.for_client:  # client_credentials: the client itself, no user
            return claims, Principal(
                subject=claims.sub,
                email="",
                roles=(),
                via="token",
                session_id="",
                expires_at=float(claims.exp),
                scopes=claims.scopes,
                client_id=claims.client_id,
            )
        user = await self.user(claims.sub)
        if user is None or user.disabled:
            raise InvalidToken("user")
        principal = Principal(
            subject=claims.sub,
            email=user.email,
            roles=claims.roles,
            via="token",
            session_id=claims.sid,
            expires_at=float(claims.exp),
            scopes=claims.scopes,
            auth_time=float(claims.auth_time) if claims.auth_time is not None else None,
            amr=claims.amr,
            email_verified=user.email_verified,
        )
        return claims, principal

    async def verify(self, token: str) -> AccessTokenClaims:
        """Signature and claims, following key rotations made by other instances or
        the CLI: the ring is re-read when older than the staleness bound, and once
        more (rate-limited) when a token names a ``kid`` we have not seen yet.

        Raises:
            InvalidToken: the token is malformed, badly signed, or its claims fail.
        """
        if self._keys is None:
            return self._verifier().verify(token)
        keys = self._keys()
        keys.reload_soon()
        try:
            return self._verifier().verify(token)
        except InvalidToken as exc:
            if exc.reason == "unknown_kid" and await keys.on_unknown_kid():
                return self._verifier().verify(token)
            raise

    def purge(self, now: float) -> int:
        """Drop verified tokens past their ``exp`` and, in ``strict`` mode, users past
        their trust limit (their next use re-reads the store anyway); ``stateless``
        mode keeps stale users, which it serves when the store fails. Returns how
        many entries went."""
        cache = self._verifier().cache
        purged = cache.purge_expired(now) if cache is not None else 0
        if self.strict:
            purged += self._user_cache.purge(now)
        return purged

    async def user(self, user_id: str) -> User | None:
        """A user through the cache: fresh for ``staleness_bound`` (``cache_ttl``
        while the fan-out bus vouches for it), refreshed ahead of time in the
        second half of that; in ``stateless`` mode a stale entry is served when
        the store fails.

        Raises:
            StoreUnavailable: the entry is stale past its limit (or missing) and
                the store cannot be reached.
        """
        now = self.clock.now()
        users = self._user_cache
        cached = users.get(user_id)
        if cached is not None:
            state = users.check(cached, now, user_id=user_id, sid=None)
            if state:
                if state == DUE:  # refresh ahead, nobody waits
                    self._user_loads.start(user_id, lambda: self._load_user(user_id))
                return cached.user
        try:
            return await self._user_loads.run(user_id, lambda: self._load_user(user_id))
        except Exception:
            if cached is not None and not self.strict:
                return cached.user  # stateless mode: a stale answer beats an outage
            raise

    async def _load_user(self, user_id: str) -> User | None:
        started = self.clock.now()
        ticket = self.fanout.begin()
        user = await self.users.get(user_id)
        self._user_cache.put(user_id, _CachedUser(user, started, self.fanout.trusted(ticket)))
        return user

    def remember_user(self, user: User) -> None:
        """Cache a user just read elsewhere (a grant), so its first bearer request
        needs no store read. Trusted for the plain bound: when that read began is
        unknown here."""
        self._user_cache.put(user.id, _CachedUser(user, self.clock.now()))

    def forget_user(self, user_id: str) -> None:
        """Drop a cached user (after disabling it here, or on a
        :class:`~keyturn.fanout.changes.Change` from another instance)."""
        self._user_cache.pop(user_id)
