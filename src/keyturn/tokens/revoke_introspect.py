"""Token revocation (RFC 7009) and introspection (RFC 7662).

Framework-free. Both take a token of either kind: a refresh token (``ktr_...``,
looked up in its family) or an access token (a JWT, verified through the bearer
path). :class:`~keyturn.token_service.TokenService` is the public facade behind
``/oauth/revoke`` and ``/oauth/introspect``; it delegates here.

Revocation is bound to the token's client (RFC 7009 section 2.1), by the rule
the refresh grant already follows (:meth:`keyturn.tokens.grants.TokenGrants.refresh_grant`):
whoever could refresh a token may revoke it. A token issued without a client
(keyturn's own password grant, ``POST /auth/token``) is revoked by a caller
naming no client; a client's token by that client, and, for a public client
(which has no credentials to prove anything with), also by a caller naming no
client. Another client's token is left alone and the answer is still 200
(section 2.2: nothing tells the caller whose it was). A confidential client's
token presented with no client authentication is ``invalid_client`` (section
2.2.1, "no client authentication included"), so a client that forgot its
credentials learns that nothing was revoked instead of trusting a 200.
"""

from __future__ import annotations

from typing import Any, Final

from keyturn.audit import AuditLog
from keyturn.clock import Clock
from keyturn.errors import InvalidClient, InvalidToken
from keyturn.oauth.clients import Clients
from keyturn.settings import Settings
from keyturn.stores.base import RefreshFamily, RefreshToken, UserStore
from keyturn.tokens.bearer import BearerAuthenticator
from keyturn.tokens.refresh import RefreshFamilies
from keyturn.tokens.revocation import RevocationList

__all__ = ["RevokeIntrospect"]

_INACTIVE: Final = {"active": False}


class RevokeIntrospect:
    """End a token (RFC 7009) or describe it (RFC 7662).

    Args:
        bearer: verifies access tokens and reads their users.
        families: refresh families.
        revocations: the in-process revocation replica.
        clients: OAuth clients (whether a token's client is confidential).
        users: accounts (a refresh token's user is read directly).
        audit: where events go.
        settings: ``public_issuer`` and ``token_audience`` for refresh answers.
        clock: the time.
    """

    def __init__(
        self,
        *,
        bearer: BearerAuthenticator,
        families: RefreshFamilies,
        revocations: RevocationList,
        clients: Clients,
        users: UserStore,
        audit: AuditLog,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self.bearer = bearer
        self.families = families
        self.revocations = revocations
        self.clients = clients
        self.users = users
        self.audit = audit
        self.settings = settings
        self.clock = clock

    async def revoke(
        self,
        token: str,
        hint: str | None = None,
        *,
        client_id: str | None = None,
        end_family: bool = False,
    ) -> None:
        """Revoke an access token (its ``jti``) or a refresh token (its whole
        family, and the family's access tokens), if ``client_id`` may (see the
        module doc). Unknown, invalid and expired tokens, and other clients'
        tokens, are not an error (RFC 7009 section 2.2). ``hint`` only saves a
        lookup; the form of the token decides.

        Args:
            token: the token to revoke.
            hint: ``token_type_hint``, ignored.
            client_id: the calling client, already authenticated (None: the
                caller named no client).
            end_family: for an access token, also end the refresh family it
                belongs to (an SPA's sign-out in refresh-cookie mode).

        Raises:
            InvalidClient: the token is a confidential client's and the caller
                did not authenticate as a client.
            StoreUnavailable: a store is unreachable.
        """
        del hint  # refresh tokens (ktr_...) and JWTs cannot be confused
        found = await self.families.lookup(token) if isinstance(token, str) else None
        if found is not None:
            family = found[1]
            if not await self._may_revoke(family.client_id, client_id):
                self._refused(family.user_id, family.id, "refresh", client_id)
                return
            await self.families.revoke(family.id)
            self.audit.record(
                "token_revoked", user_id=family.user_id, session=family.id, kind="refresh"
            )
            return
        try:
            claims = await self.bearer.verify(token)
        except InvalidToken:
            return
        if not await self._may_revoke(claims.client_id, client_id):
            self._refused(claims.sub, claims.sid, "access", client_id)
            return
        await self.revocations.revoke_jti(claims.jti, claims.exp)
        ended = None
        if end_family:
            owned = await self.families.store.get_family(claims.sid)
            if owned is not None and owned.user_id == claims.sub:
                ended = await self.families.revoke(owned.id)
        self.audit.record(
            "token_revoked",
            user_id=claims.sub,
            session=claims.sid,
            kind="access",
            jti=claims.jti,
            family_revoked=True if ended is not None else None,
        )

    async def _may_revoke(self, owner: str | None, caller: str | None) -> bool:
        """Whether ``caller`` may revoke a token issued to ``owner`` (module doc).

        Raises:
            InvalidClient: ``owner`` is a confidential client and ``caller`` None.
            StoreUnavailable: the client store is unreachable.
        """
        if caller is not None or owner is None:
            return caller == owner
        client = await self.clients.get(owner)
        if client is not None and client.confidential:
            raise InvalidClient()
        return True  # a public client's token, or a removed client's: revoking is safe

    def _refused(self, user_id: str, session: str, kind: str, caller: str | None) -> None:
        """Audit a revocation left undone: the token is another client's."""
        self.audit.record(
            "token_revoked",
            outcome="refused",
            user_id=user_id,
            session=session,
            reason="another_client",
            kind=kind,
            client_id=caller,
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
            claims = await self.bearer.verify(token)
            await self.revocations.ensure_fresh()
            self.revocations.check(claims)
        except InvalidToken:
            return dict(_INACTIVE)
        user = await self.bearer.user(claims.sub)
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
