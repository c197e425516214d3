"""The token service: what ``/oauth/*`` and every bearer-authenticated route call.

Framework-free. :class:`TokenService` is the one public facade over the token
side of keyturn: it composes the auth service, refresh families, the revocation
replica, the access-token issuer and verifier, and the audit log, and delegates
each idea to its own module:

- grants (:mod:`keyturn.tokens.grants`): :meth:`TokenService.password_grant`,
  :meth:`TokenService.refresh_grant`, and :meth:`TokenService.session_token`
  (a cookie session's short token);
- the hot path (:mod:`keyturn.tokens.bearer`): :meth:`TokenService.authenticate_bearer`,
  which does no I/O in the common case (verified-token cache, in-memory
  revocation replica, and an in-process user cache refreshed at most once per
  ``staleness_bound``);
- RFC 7009 :meth:`TokenService.revoke` and RFC 7662 :meth:`TokenService.introspect`
  (:mod:`keyturn.tokens.revoke_introspect`);
- sign-outs, here: :meth:`TokenService.logout_token`, :meth:`TokenService.logout_all`,
  :meth:`TokenService.change_password`, :meth:`TokenService.revoke_family`,
  :meth:`TokenService.list_families`, and :meth:`TokenService.sweep`.

Client authentication is the caller's (the HTTP layer authenticates a client
before it passes ``client_id`` here); what a client may do with it (scopes,
whose tokens it may refresh or revoke) is decided here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from keyturn.audit import AuditLog
from keyturn.auth import AuthService
from keyturn.clock import Clock
from keyturn.errors import NotAuthenticated, NotFound
from keyturn.fanout.instance import FanOut
from keyturn.keys.rotation import KeyManager
from keyturn.oauth.clients import Clients
from keyturn.principal import Principal
from keyturn.sessions.cache import ValidatedSession
from keyturn.settings import Settings
from keyturn.stores.base import RefreshFamily, UserStore
from keyturn.tokens.access import AccessTokenClaims, TokenIssuer, TokenVerifier
from keyturn.tokens.bearer import BearerAuthenticator
from keyturn.tokens.grants import TokenGrants, TokenResponse
from keyturn.tokens.refresh import RefreshFamilies
from keyturn.tokens.revocation import RevocationList
from keyturn.tokens.revoke_introspect import RevokeIntrospect
from keyturn.tokens.scopes import normalize_scope

__all__ = ["TokenResponse", "TokenService", "normalize_scope"]


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
        keys: returns the key manager, so verification follows key rotations.
        audit: where events go.
        settings: lifetimes, ``revocation_mode``, ``staleness_bound``.
        clock: the time.
        user_cache_size: how many users the bearer path keeps (LRU).
        fanout: the fan-out of this instance (how long cached users are
            trusted); None: no bus.
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
        fanout: FanOut | None = None,
    ) -> None:
        self.auth = auth
        self.families = families
        self.revocations = revocations
        self.clients = clients
        self.users = users
        self.audit = audit
        self.settings = settings
        self.clock = clock
        self.strict = settings.revocation_mode == "strict"
        self.bearer = BearerAuthenticator(
            revocations=revocations,
            users=users,
            verifier=verifier,
            keys=keys,
            settings=settings,
            clock=clock,
            user_cache_size=user_cache_size,
            fanout=fanout,
        )
        self.grants = TokenGrants(
            auth=auth,
            families=families,
            clients=clients,
            users=users,
            issuer=issuer,
            remember_user=self.bearer.remember_user,
            audit=audit,
            settings=settings,
            clock=clock,
        )
        self.revoke_introspect = RevokeIntrospect(
            bearer=self.bearer,
            families=families,
            revocations=revocations,
            clients=clients,
            users=users,
            audit=audit,
            settings=settings,
            clock=clock,
        )

    # --- grants (keyturn.grants) --------------------------------------------------------

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

        Raises:
            InvalidScope: ``scope`` is malformed or outside the client's allowlist
                (the default scopes without a client).
            InvalidClient: ``client_id`` names no client.
            TooManyAttempts: too many recent failures for this account or client.
            InvalidCredentials: wrong username or password, or a disabled account.
            StoreUnavailable: a store is unreachable.
        """
        return await self.grants.password_grant(
            username, password, scope=scope, client_id=client_id, ip=ip, user_agent=user_agent
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

        Raises:
            InvalidGrant: unknown, used (after the grace window), expired or
                revoked token; a disabled user; another client's token.
            StoreUnavailable: a store is unreachable.
        """
        return await self.grants.refresh_grant(
            refresh_token, client_id=client_id, ip=ip, user_agent=user_agent
        )

    async def session_token(self, validated: ValidatedSession) -> TokenResponse:
        """A short access token bound to a browser session (``POST /auth/token``).

        Raises:
            NotAuthenticated: the session has under a second left.
        """
        return await self.grants.session_token(validated)

    # --- the hot path (keyturn.bearer) --------------------------------------------------

    async def authenticate_bearer(self, token: str) -> tuple[AccessTokenClaims, Principal]:
        """The claims and caller of a bearer token.

        Raises:
            InvalidToken: invalid, expired, revoked, or its user is gone/disabled.
            StoreUnavailable: the replica or the user cache is stale past the
                bound and the store cannot be reached (fail closed).
        """
        return await self.bearer.authenticate(token)

    def forget_user(self, user_id: str) -> None:
        """Drop a cached user (after disabling it on this instance)."""
        self.bearer.forget_user(user_id)

    # --- RFC 7009 and RFC 7662 (keyturn.revoke_introspect) ----------------------------

    async def revoke(
        self,
        token: str,
        hint: str | None = None,
        *,
        client_id: str | None = None,
        end_family: bool = False,
    ) -> None:
        """Revoke an access token or a refresh token's whole family (RFC 7009),
        if it was issued to ``client_id`` (the authenticated caller; None: no
        client named); unknown, invalid and expired tokens and other clients'
        tokens are not an error. ``end_family`` also ends an access token's
        refresh family.

        Raises:
            InvalidClient: the token is a confidential client's and the caller
                did not authenticate as a client.
            StoreUnavailable: a store is unreachable.
        """
        await self.revoke_introspect.revoke(token, hint, client_id=client_id, end_family=end_family)

    async def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662: the state of a token, or exactly ``{"active": False}``.

        Raises:
            StoreUnavailable: a store is unreachable.
        """
        return await self.revoke_introspect.introspect(token)

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

    async def revoke_exposed(self, token: str) -> bool:
        """Revoke an access token that was exposed where credentials must never
        be, such as a URL's query string: URLs end up in access logs, browser
        history and ``Referer`` headers, so a token seen there is as good as
        leaked. A token that does not verify is left alone (nothing to revoke,
        and no work for forgeries beyond the signature check). Audited as
        ``token_revoked`` with ``reason="exposed_in_url"``.

        Returns:
            Whether a valid token was revoked.

        Raises:
            StoreUnavailable: the revocation could not be stored (it still
                applies on this instance).
        """
        try:
            claims = await self.bearer.verify(token)
        except NotAuthenticated:  # InvalidToken: malformed, forged or expired
            return False
        await self.revocations.revoke_jti(claims.jti, claims.exp)
        self.audit.record(
            "token_revoked",
            user_id=claims.sub,
            session=claims.sid,
            reason="exposed_in_url",
            kind="access",
            jti=claims.jti,
        )
        return True

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
