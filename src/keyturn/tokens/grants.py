"""Token grants: how a caller gets an access token (RFC 6749).

(Over 300 lines: one class, the four ways to get an access token, sharing
their audit and the bearer cache warm-up.)

Framework-free. :class:`TokenGrants` implements the password grant (section
4.3), the refresh grant (section 6, with rotation, a grace window and reuse
detection), the client credentials grant (section 4.4), and the short token of
a browser session; each answers with a
:class:`TokenResponse`. ``/oauth/token`` and ``POST /auth/token`` call it as
:attr:`Keyturn.grants <keyturn.runtime.Keyturn.grants>`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from keyturn.accounts.auth import AuthService
from keyturn.audit import AuditLog
from keyturn.clock import Clock
from keyturn.errors import (
    GrantNotAllowed,
    InvalidClient,
    InvalidGrant,
    NotAuthenticated,
    UnsupportedGrantType,
)
from keyturn.oauth.clients import Clients
from keyturn.sessions.cache import ValidatedSession
from keyturn.settings import Settings
from keyturn.stores.protocols import UserStore
from keyturn.stores.records import RefreshFamily, User
from keyturn.tokens.access import TokenIssuer
from keyturn.tokens.claims import AccessTokenClaims
from keyturn.tokens.dpop_binding import (
    DpopBinding,
    check_family_binding,
    check_replayed_binding,
    token_type,
)
from keyturn.tokens.refresh import RefreshFamilies, RefreshReuse
from keyturn.tokens.scopes import check_allowed_scope, normalize_scope

__all__ = ["TokenGrants", "TokenResponse"]


@dataclass(frozen=True)
class TokenResponse:
    """A token endpoint answer (RFC 6749 section 5.1); secrets are kept out of ``repr``."""

    access_token: str = field(repr=False)
    expires_in: int
    claims: AccessTokenClaims
    refresh_token: str | None = field(default=None, repr=False)
    scope: str = ""
    token_type: str = "Bearer"  # noqa: S105 (RFC 6750 token type)
    #: Seconds until ``refresh_token`` expires (sliding TTL capped by the family's
    #: absolute lifetime); None without a refresh token. Not in the JSON body.
    refresh_expires_in: int | None = None
    #: The OpenID Connect ID token (the code grant with ``openid``), else None.
    id_token: str | None = field(default=None, repr=False)

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
        if self.refresh_token is not None or self.scope or self.claims.for_client:
            body["scope"] = self.scope
        if self.id_token is not None:
            body["id_token"] = self.id_token
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
        auth_time=data.get("auth_time"),
        jkt=(data.get("cnf") or {}).get("jkt"),
    )


class TokenGrants:
    """The password grant, the refresh grant and a session's short token.

    Args:
        auth: the credential check (throttle, audit of failures).
        families: refresh families.
        clients: OAuth clients (to check a family's client on refresh).
        users: accounts.
        issuer: returns the access-token issuer (follows key rotation).
        remember_user: warms the bearer path's user cache with a user just read.
        audit: where events go.
        settings: ``access_token_ttl``.
        clock: the time.
        refuse_if_enrolled: after a correct password, raises ``MfaRequired``
            for a user with a second factor (the password grant cannot ask for
            one); None skips the check.
    """

    def __init__(
        self,
        *,
        auth: AuthService,
        families: RefreshFamilies,
        clients: Clients,
        users: UserStore,
        issuer: Callable[[], TokenIssuer],
        remember_user: Callable[[User], None],
        audit: AuditLog,
        settings: Settings,
        clock: Clock,
        refuse_if_enrolled: Callable[[str], Awaitable[None]] | None = None,
    ) -> None:
        self.refuse_if_enrolled = refuse_if_enrolled
        self.auth = auth
        self.families = families
        self.clients = clients
        self.users = users
        self._issuer = issuer
        self._remember_user = remember_user
        self.audit = audit
        self.settings = settings
        self.clock = clock

    async def password_grant(
        self,
        username: str,
        password: str,
        *,
        scope: str = "",
        client_id: str | None = None,
        ip: str,
        user_agent: str | None,
        dpop: DpopBinding | None = None,
    ) -> TokenResponse:
        """Sign in with a password and open a refresh family (RFC 6749 section 4.3).

        Same rules as a session sign-in: throttle first, one failure for unknown
        address, wrong password or disabled account.

        Off unless ``--password-grant`` (RFC 9700 section 2.4: it MUST NOT be
        used), and then only for a client registered with the ``password`` grant
        (wave-1 clients have it) or, with no ``client_id``, keyturn's own
        first-party use.

        The scope must lie within what the client may ask for (its
        ``allowed_scopes``; the default scopes without a client), checked before
        the password is.

        Raises:
            UnsupportedGrantType: ``--password-grant`` is off.
            GrantNotAllowed: the client is not registered for the password grant.
            InvalidScope: ``scope`` is malformed or outside the client's allowlist.
            InvalidClient: ``client_id`` names no client.
            TooManyAttempts: too many recent failures for this account or client.
            InvalidCredentials: wrong username or password, or a disabled account.
            MfaRequired: the password is right but the user has a second factor.
            StoreUnavailable: a store is unreachable.
        """
        if not self.settings.password_grant:
            raise UnsupportedGrantType()
        scope = normalize_scope(scope)
        client = None
        if client_id is not None:
            client = await self.clients.get(client_id)
            if client is None:
                raise InvalidClient()
            if "password" not in client.grant_types:
                raise GrantNotAllowed()
        check_allowed_scope(scope, self.clients.allowed_scopes(client))
        user = await self.auth.check_credentials(
            username, password, ip=ip, user_agent=user_agent, via="token"
        )
        if self.refuse_if_enrolled is not None:  # MFA (#15): this grant cannot ask for it
            await self.refuse_if_enrolled(user.id)
        issued = await self.families.start(
            user.id,
            client_id=client_id,
            scope=scope,
            ip=ip,
            user_agent=user_agent,
            dpop_jkt=dpop.family_jkt if dpop is not None else None,
        )
        family = issued.family
        for evicted in issued.evicted:
            self.audit.record(
                "session_evicted",
                user_id=evicted.user_id,
                ip=ip,
                session=evicted.id,
                reason="max_refresh_families_per_user",
                via="token",
            )
        token, claims = self._issuer().issue(
            user.id,
            sid=family.id,
            roles=user.roles,
            scope=scope,
            client_id=client_id,
            auth_time=family.created_at,
            jkt=dpop.jkt if dpop is not None else None,
            amr=("pwd",),
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
            token,
            claims.exp - claims.iat,
            claims,
            refresh_token=issued.refresh_token,
            scope=scope,
            refresh_expires_in=self._refresh_expires_in(family),
            token_type=token_type(dpop),
        )

    async def refresh_grant(
        self,
        refresh_token: str,
        *,
        client_id: str | None = None,
        ip: str | None = None,
        user_agent: str | None = None,
        dpop: DpopBinding | None = None,
    ) -> TokenResponse:
        """Rotate a refresh token: a new access token and a new refresh token.

        Within ``refresh_grace`` of a rotation, the same token gets the same pair
        again. A used token after that revokes its family (audited as
        ``refresh_reuse_detected``).

        ``dpop`` is the request's verified DPoP proof: the new access token is
        bound to its key. A family bound to a key (a public client's, RFC 9449
        section 5) is refreshed only with a proof from that same key.

        Raises:
            InvalidDpopProof: the family is bound to a DPoP key and the request
                has no proof, or one from another key; nothing is rotated.
            InvalidGrant: unknown, used (after the grace window), expired or
                revoked token; a disabled user; another client's token.
            StoreUnavailable: a store is unreachable.
        """

        async def respond(family: RefreshFamily, new_refresh: str) -> dict[str, Any]:
            await self._check_client(family, client_id)
            check_family_binding(family, dpop)
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
                auth_time=family.created_at,  # the password grant that opened it
                jkt=dpop.jkt if dpop is not None else None,
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
        response = rotation.response
        claims = _claims_from_dict(response["claims"])
        if rotation.replayed:
            await self._check_client(family, client_id)
            check_family_binding(family, dpop)
            check_replayed_binding(claims, dpop)
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
            refresh_expires_in=self._refresh_expires_in(family),
            token_type=token_type(dpop),
        )

    async def client_credentials_grant(
        self,
        client_id: str,
        *,
        scope: str = "",
        ip: str | None = None,
        dpop: DpopBinding | None = None,
    ) -> TokenResponse:
        """An access token for a client acting for itself (RFC 6749 section 4.4),
        for an already authenticated ``client_id``: ``sub`` and ``client_id``
        are the client, no ``sid``, no refresh token, no roles; the scope lies
        within the client's allowlist (none asked for: an empty scope). In
        strict mode it is revocable by ``jti`` like any access token. ``dpop``
        binds the token to the proof's key (``cnf.jkt``, ``token_type: DPoP``).

        Raises:
            InvalidClient: no such client, or a public one (it cannot authenticate).
            GrantNotAllowed: the client is not registered for ``client_credentials``.
            InvalidScope: ``scope`` is malformed or outside the allowlist.
            StoreUnavailable: the client store is unreachable.
        """
        client = await self.clients.get(client_id)
        if client is None or not client.confidential:
            raise InvalidClient()
        if "client_credentials" not in client.grant_types:
            raise GrantNotAllowed()
        scope = normalize_scope(scope)
        check_allowed_scope(scope, self.clients.allowed_scopes(client))
        token, claims = self._issuer().issue(
            client.id,
            sid="",
            scope=scope,
            client_id=client.id,
            jkt=dpop.jkt if dpop is not None else None,
        )
        self.audit.record(
            "client_token_issued", client_id=client.id, ip=ip, scope=scope, jti=claims.jti
        )
        return TokenResponse(
            token, claims.exp - claims.iat, claims, scope=scope, token_type=token_type(dpop)
        )

    def _refresh_expires_in(self, family: RefreshFamily) -> int:
        """Seconds a refresh token issued now lives: ``refresh_token_ttl``, capped
        by the family's absolute end."""
        now = self.clock.now()
        return max(0, int(min(now + self.settings.refresh_token_ttl, family.expires_at) - now))

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
            user.id,
            sid=session.handle,
            roles=user.roles,
            scope="",
            ttl=ttl,
            auth_time=session.auth_time,
            amr=session.amr,
        )
        self._remember_user(user)
        return TokenResponse(token, ttl, claims)
