"""The token service: what ``/oauth/*`` and every bearer-authenticated route call.

Framework-free. It composes the auth service (the one credential check, with its
throttle), refresh families, the revocation replica, the access-token issuer and
verifier, and the audit log:

- grants: :meth:`TokenService.password_grant`, :meth:`TokenService.refresh_grant`,
  and :meth:`TokenService.session_token` (a cookie session's short token);
- the hot path: :meth:`TokenService.authenticate_bearer`, which does no I/O in
  the common case (verified-token cache, in-memory revocation replica, and an
  in-process user cache refreshed at most once per ``staleness_bound``);
- RFC 7009 :meth:`TokenService.revoke` and RFC 7662 :meth:`TokenService.introspect`;
- sign-outs: :meth:`TokenService.logout_token`, :meth:`TokenService.logout_all`,
  :meth:`TokenService.revoke_family`, and :meth:`TokenService.list_families`.

Client authentication is the caller's (the HTTP layer authenticates a client
before it passes ``client_id`` here).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from keyturn.audit import AuditLog
from keyturn.auth import AuthService
from keyturn.clients import Clients
from keyturn.clock import Clock
from keyturn.errors import InvalidGrant, InvalidScope, InvalidToken, NotAuthenticated, NotFound
from keyturn.keyring_manager import KeyManager
from keyturn.principal import Principal
from keyturn.refresh import RefreshFamilies, RefreshReuse
from keyturn.revocation import RevocationList
from keyturn.sessions import ValidatedSession
from keyturn.settings import Settings
from keyturn.singleflight import SingleFlight
from keyturn.stores.base import RefreshFamily, RefreshToken, User, UserStore
from keyturn.tokens import AccessTokenClaims, TokenIssuer, TokenVerifier

__all__ = ["TokenResponse", "TokenService", "normalize_scope"]

_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,128}")  # RFC 6749 section 3.3
_MAX_SCOPE = 1024
_INACTIVE: Final = {"active": False}


def normalize_scope(scope: str | None) -> str:
    """A requested ``scope`` as space-separated unique values, in request order.

    Raises:
        InvalidScope: a value has characters RFC 6749 forbids, or it is too long.
    """
    if not scope:
        return ""
    if not isinstance(scope, str) or len(scope) > _MAX_SCOPE:
        raise InvalidScope()
    values: list[str] = []
    for value in scope.split(" "):
        if not value:
            continue
        if _SCOPE_TOKEN.fullmatch(value) is None:
            raise InvalidScope()
        if value not in values:
            values.append(value)
    return " ".join(values)


@dataclass(frozen=True)
class TokenResponse:
    """A token endpoint answer (RFC 6749 section 5.1); secrets are kept out of ``repr``."""

    access_token: str = field(repr=False)
    expires_in: int
    claims: AccessTokenClaims
    refresh_token: str | None = field(default=None, repr=False)
    scope: str = ""
    token_type: str = "Bearer"  # noqa: S105 (RFC 6750 token type)

    def to_dict(self) -> dict[str, Any]:
        """The JSON body: ``access_token``, ``token_type``, ``expires_in``, and
        ``refresh_token`` and ``scope`` for the grants that issue one."""
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
            body["scope"] = self.scope
        return body


def _claims_from_dict(data: dict[str, Any]) -> AccessTokenClaims:
    aud = data["aud"]
    return AccessTokenClaims(
        iss=data["iss"],
        sub=data["sub"],
        aud=tuple(aud) if isinstance(aud, list) else aud,
        exp=int(data["exp"]),
        iat=int(data["iat"]),
        jti=data["jti"],
        sid=data["sid"],
        scope=data.get("scope", ""),
        roles=tuple(data.get("roles", ())),
        nbf=data.get("nbf"),
        client_id=data.get("client_id"),
    )


@dataclass(slots=True)
class _CachedUser:
    user: User | None
    fetched_at: float


class TokenService:
    """Token grants, bearer authentication, revocation and introspection.

    Args:
        auth: the credential check (throttle, audit of failures) and sessions.
        families: refresh families.
        revocations: the in-process revocation replica.
        clients: OAuth clients (to check a family's client on refresh).
        users: accounts (the bearer path reads them through a local cache).
        issuer: returns the access-token issuer (follows key rotation).
        verifier: returns the access-token verifier.
        audit: where events go.
        settings: lifetimes, ``revocation_mode``, ``staleness_bound``.
        clock: the time.
        user_cache_size: how many users the bearer path keeps (LRU).
    """

    def __init__(
        self,
        *,
        auth: AuthService,
        families: RefreshFamilies,
        revocations: RevocationList,
        clients: Clients,
        users: UserStore,
        issuer: Callable[[], TokenIssuer],
        verifier: Callable[[], TokenVerifier],
        keys: Callable[[], KeyManager] | None = None,
        audit: AuditLog,
        settings: Settings,
        clock: Clock,
        user_cache_size: int = 100_000,
    ) -> None:
        self.auth = auth
        self.families = families
        self.revocations = revocations
        self.clients = clients
        self.users = users
        self._issuer = issuer
        self._verifier = verifier
        self._keys = keys
        self.audit = audit
        self.settings = settings
        self.clock = clock
        self.strict = settings.revocation_mode == "strict"
        self._user_cache: OrderedDict[str, _CachedUser] = OrderedDict()
        self._user_loads: SingleFlight[str, User | None] = SingleFlight()
        self._user_cache_size = max(1, user_cache_size)

    # --- grants ---------------------------------------------------------------------

    async def password_grant(
        self,
        username: str,
        password: str,
        *,
        scope: str = "",
        client_id: str | None = None,
        ip: str,
        user_agent: str | None,
    ) -> TokenResponse:
        """Sign in with a password and open a refresh family (RFC 6749 section 4.3).

        Same rules as a session sign-in: throttle first, one failure for unknown
        address, wrong password or disabled account.

        Raises:
            InvalidScope: ``scope`` is malformed.
            TooManyAttempts: too many recent failures for this account or client.
            InvalidCredentials: wrong username or password, or a disabled account.
            StoreUnavailable: a store is unreachable.
        """
        scope = normalize_scope(scope)
        user = await self.auth.check_credentials(
            username, password, ip=ip, user_agent=user_agent, via="token"
        )
        issued = await self.families.start(
            user.id, client_id=client_id, scope=scope, ip=ip, user_agent=user_agent
        )
        family = issued.family
        token, claims = self._issuer().issue(
            user.id, sid=family.id, roles=user.roles, scope=scope, client_id=client_id
        )
        self._remember_user(user)
        self.audit.record(
            "sign_in",
            user_id=user.id,
            email=user.email,
            ip=ip,
            user_agent=user_agent,
            session=family.id,
            via="token",
            client_id=client_id,
        )
        return TokenResponse(
            token, claims.exp - claims.iat, claims, refresh_token=issued.refresh_token, scope=scope
        )

    async def refresh_grant(
        self,
        refresh_token: str,
        *,
        client_id: str | None = None,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> TokenResponse:
        """Rotate a refresh token: a new access token and a new refresh token.

        Within ``refresh_grace`` of a rotation, the same token gets the same pair
        again. A used token after that revokes its family (audited as
        ``refresh_reuse_detected``).

        Raises:
            InvalidGrant: unknown, used (after the grace window), expired or
                revoked token; a disabled user; another client's token.
            StoreUnavailable: a store is unreachable.
        """

        async def respond(family: RefreshFamily, new_refresh: str) -> dict[str, Any]:
            await self._check_client(family, client_id)
            user = await self.users.get(family.user_id)
            if user is None or user.disabled:
                raise InvalidGrant()
            self._remember_user(user)
            token, claims = self._issuer().issue(
                user.id,
                sid=family.id,
                roles=user.roles,
                scope=family.scope,
                client_id=family.client_id,
            )
            return {"access_token": token, "refresh_token": new_refresh, "claims": claims.to_dict()}

        try:
            rotation = await self.families.rotate(
                refresh_token, respond, ip=ip, user_agent=user_agent
            )
        except RefreshReuse as reuse:
            self.audit.record(
                "refresh_reuse_detected",
                outcome="revoked",
                user_id=reuse.family.user_id,
                ip=ip,
                user_agent=user_agent,
                session=reuse.family.id,
            )
            raise InvalidGrant() from None
        family = rotation.family
        if rotation.replayed:
            await self._check_client(family, client_id)
        response = rotation.response
        claims = _claims_from_dict(response["claims"])
        self.audit.record(
            "token_refreshed",
            user_id=family.user_id,
            ip=ip,
            user_agent=user_agent,
            session=family.id,
            replayed=rotation.replayed,
        )
        return TokenResponse(
            response["access_token"],
            max(0, claims.exp - int(self.clock.now())),
            claims,
            refresh_token=response["refresh_token"],
            scope=family.scope,
        )

    async def _check_client(self, family: RefreshFamily, client_id: str | None) -> None:
        """A family is bound to the client it was issued to (RFC 6749 section 6)."""
        if family.client_id is None:
            if client_id is not None:
                raise InvalidGrant()
            return
        if client_id is not None:
            if client_id != family.client_id:
                raise InvalidGrant()
            return
        client = await self.clients.get(family.client_id)
        if client is None or client.confidential:
            raise InvalidGrant()  # a confidential client must authenticate to refresh

    async def session_token(self, validated: ValidatedSession) -> TokenResponse:
        """A short access token bound to a browser session (``POST /auth/token``):
        ``sid`` is the session's handle, so it dies when the session is revoked;
        it never outlives the session's idle or absolute limit. No refresh token.

        Raises:
            NotAuthenticated: the session has under a second left.
        """
        session, user = validated.session, validated.user
        now = self.clock.now()
        # The session was just validated (seen now): a full idle window lies ahead.
        remaining = min(session.expires_at - now, session.idle_timeout)
        ttl = min(self.settings.access_token_ttl, int(remaining))
        if ttl < 1:
            raise NotAuthenticated()
        token, claims = self._issuer().issue(
            user.id, sid=session.handle, roles=user.roles, scope="", ttl=ttl
        )
        self._remember_user(user)
        return TokenResponse(token, ttl, claims)

    # --- the hot path ---------------------------------------------------------------

    async def authenticate_bearer(self, token: str) -> tuple[AccessTokenClaims, Principal]:
        """The claims and caller of a bearer token.

        Signature and claims (cached per token string), then in ``strict`` mode
        the revocation replica, then the user (cached for ``staleness_bound``):
        a disabled or deleted user is refused in either mode.

        Raises:
            InvalidToken: invalid, expired, revoked, or its user is gone/disabled.
            StoreUnavailable: the replica or the user cache is stale past the
                bound and the store cannot be reached (fail closed).
        """
        claims = await self._verify(token)
        if self.strict:
            await self.revocations.ensure_fresh()
            self.revocations.check(claims)
        user = await self._user(claims.sub)
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
        )
        return claims, principal

    async def _verify(self, token: str) -> AccessTokenClaims:
        """Signature and claims, following key rotations made by other instances or
        the CLI: the ring is re-read when older than the staleness bound, and once
        more (rate-limited) when a token names a ``kid`` we have not seen yet."""
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

    async def _user(self, user_id: str) -> User | None:
        now = self.clock.now()
        cached = self._user_cache.get(user_id)
        bound = self.settings.staleness_bound
        if cached is not None and now - cached.fetched_at < bound:
            if now - cached.fetched_at >= bound / 2:  # refresh ahead, nobody waits
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
        user = await self.users.get(user_id)
        self._store_user(user_id, _CachedUser(user, started))
        return user

    def _remember_user(self, user: User) -> None:
        self._store_user(user.id, _CachedUser(user, self.clock.now()))

    def _store_user(self, user_id: str, entry: _CachedUser) -> None:
        cache = self._user_cache
        cache[user_id] = entry
        cache.move_to_end(user_id)
        while len(cache) > self._user_cache_size:
            cache.popitem(last=False)

    def forget_user(self, user_id: str) -> None:
        """Drop a cached user (after disabling it on this instance)."""
        self._user_cache.pop(user_id, None)

    # --- RFC 7009 and RFC 7662 --------------------------------------------------------

    async def revoke(self, token: str, hint: str | None = None) -> None:
        """Revoke an access token (its ``jti``) or a refresh token (its whole
        family, and the family's access tokens). Unknown, invalid and expired
        tokens are not an error (RFC 7009 section 2.2). ``hint`` only saves a
        lookup; the form of the token decides.

        Raises:
            StoreUnavailable: a store is unreachable.
        """
        del hint  # refresh tokens (ktr_...) and JWTs cannot be confused
        found = await self.families.lookup(token) if isinstance(token, str) else None
        if found is not None:
            family = found[1]
            await self.families.revoke(family.id)
            self.audit.record(
                "token_revoked", user_id=family.user_id, session=family.id, kind="refresh"
            )
            return
        try:
            claims = await self._verify(token)
        except InvalidToken:
            return
        await self.revocations.revoke_jti(claims.jti, claims.exp)
        self.audit.record(
            "token_revoked", user_id=claims.sub, session=claims.sid, kind="access", jti=claims.jti
        )

    async def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662: the state of a token, or exactly ``{"active": False}``.

        Access tokens are always checked against revocations here, whatever the
        mode: this is what a downstream verifier asks for strict revocation.

        Raises:
            StoreUnavailable: a store is unreachable.
        """
        if not isinstance(token, str):
            return dict(_INACTIVE)
        found = await self.families.lookup(token)
        if found is not None:
            return await self._introspect_refresh(*found)
        try:
            claims = await self._verify(token)
            await self.revocations.ensure_fresh()
            self.revocations.check(claims)
        except InvalidToken:
            return dict(_INACTIVE)
        user = await self._user(claims.sub)
        if user is None or user.disabled:
            return dict(_INACTIVE)
        answer: dict[str, Any] = {
            "active": True,
            "sub": claims.sub,
            "exp": claims.exp,
            "iat": claims.iat,
            "iss": claims.iss,
            "aud": list(claims.aud) if isinstance(claims.aud, tuple) else claims.aud,
            "jti": claims.jti,
            "scope": claims.scope,
            "token_type": "access_token",
            "sid": claims.sid,
        }
        if claims.client_id is not None:
            answer["client_id"] = claims.client_id
        return answer

    async def _introspect_refresh(
        self, stored: RefreshToken, family: RefreshFamily
    ) -> dict[str, Any]:
        now = self.clock.now()
        if stored.used_at is not None or now >= stored.expires_at or not family.is_live(now):
            return dict(_INACTIVE)
        user = await self.users.get(family.user_id)
        if user is None or user.disabled:
            return dict(_INACTIVE)
        answer: dict[str, Any] = {
            "active": True,
            "sub": family.user_id,
            "exp": int(stored.expires_at),
            "iat": int(stored.issued_at),
            "iss": self.settings.public_issuer,
            "aud": self.settings.token_audience,
            "jti": stored.token_hash[:32],
            "scope": family.scope,
            "token_type": "refresh_token",
            "sid": family.id,
        }
        if family.client_id is not None:
            answer["client_id"] = family.client_id
        return answer

    # --- sign-outs and listings ---------------------------------------------------------

    async def logout_token(
        self, claims: AccessTokenClaims, *, ip: str | None = None, user_agent: str | None = None
    ) -> None:
        """Sign out with a bearer token: deny it, and end its refresh family.

        Raises:
            StoreUnavailable: a store is unreachable.
        """
        await self.revocations.revoke_jti(claims.jti, claims.exp)
        family = await self.families.store.get_family(claims.sid)
        if family is not None and family.user_id == claims.sub:
            await self.families.revoke(family.id)
        self.audit.record(
            "sign_out", user_id=claims.sub, ip=ip, user_agent=user_agent, session=claims.sid
        )

    async def logout_all(self, user_id: str, *, ip: str | None = None) -> int:
        """End every browser session, refresh family and outstanding access token
        of a user (the cut-off). Returns how many browser sessions ended.

        Raises:
            StoreUnavailable: a store is unreachable.
        """
        return await self.auth.sign_out_everywhere(user_id, ip=ip)

    async def change_password(
        self,
        claims: AccessTokenClaims,
        current_password: str,
        new_password: str,
        *,
        ip: str | None = None,
    ) -> None:
        """Change the password of a bearer caller, then end every browser session,
        every other refresh family and every access token issued before now (the
        caller's included). The caller's family is kept: its next refresh gets a
        fresh access token.

        Raises:
            NotAuthenticated: the token's user is gone.
            TooManyAttempts: too many recent failures for this account or client.
            InvalidCredentials: ``current_password`` is wrong.
            WeakPassword: ``new_password`` breaks the policy.
            StoreUnavailable: a store is unreachable.
        """
        user = await self.users.get(claims.sub)
        if user is None:
            raise NotAuthenticated()
        await self.auth.replace_password(
            user, current_password, new_password, ip=ip, session=claims.sid
        )
        families = await self.families.end_user_tokens(user.id, cutoff=True, keep=claims.sid)
        ended = await self.auth.sessions.revoke_all(user.id)
        self.forget_user(user.id)
        self.audit.record(
            "password_changed",
            user_id=user.id,
            email=user.email,
            ip=ip,
            session=claims.sid,
            sessions_ended=len(ended),
            families_ended=families,
            via="token",
        )

    async def list_families(self, user_id: str) -> list[RefreshFamily]:
        """A user's live token sign-ins, oldest first (``"kind": "token"`` rows).

        Raises:
            StoreUnavailable: the store is unreachable.
        """
        return await self.families.list_live(user_id)

    async def revoke_family(self, user_id: str, family_id: str, *, ip: str | None = None) -> None:
        """End one of the user's token sign-ins by its handle.

        Raises:
            NotFound: no such live family, or it is another user's.
            StoreUnavailable: a store is unreachable.
        """
        if not isinstance(family_id, str) or len(family_id) > 64:
            raise NotFound()
        family = await self.families.store.get_family(family_id)
        if family is None or family.user_id != user_id or not family.is_live(self.clock.now()):
            raise NotFound()
        await self.families.revoke(family.id)
        self.audit.record("session_revoked", user_id=user_id, ip=ip, session=family.id, via="token")

    async def sweep(self) -> int:
        """Delete expired families, refresh tokens and revocation entries.

        Raises:
            StoreUnavailable: a store is unreachable.
        """
        return await self.families.sweep() + await self.revocations.sweep()
