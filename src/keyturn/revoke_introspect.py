"""Token revocation (RFC 7009) and introspection (RFC 7662).

Framework-free. Both take a token of either kind: a refresh token (``ktr_...``,
looked up in its family) or an access token (a JWT, verified through the bearer
path). :class:`~keyturn.token_service.TokenService` is the public facade behind
``/oauth/revoke`` and ``/oauth/introspect``; it delegates here.
"""

from __future__ import annotations

from typing import Any, Final

from keyturn.audit import AuditLog
from keyturn.bearer import BearerAuthenticator
from keyturn.clock import Clock
from keyturn.errors import InvalidToken
from keyturn.refresh import RefreshFamilies
from keyturn.revocation import RevocationList
from keyturn.settings import Settings
from keyturn.stores.base import RefreshFamily, RefreshToken, UserStore

__all__ = ["RevokeIntrospect"]

_INACTIVE: Final = {"active": False}


class RevokeIntrospect:
    """End a token (RFC 7009) or describe it (RFC 7662).

    Args:
        bearer: verifies access tokens and reads their users.
        families: refresh families.
        revocations: the in-process revocation replica.
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
        users: UserStore,
        audit: AuditLog,
        settings: Settings,
        clock: Clock,
    ) -> None:
        self.bearer = bearer
        self.families = families
        self.revocations = revocations
        self.users = users
        self.audit = audit
        self.settings = settings
        self.clock = clock

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
            claims = await self.bearer.verify(token)
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
