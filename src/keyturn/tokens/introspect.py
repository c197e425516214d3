"""Token introspection (RFC 7662): what ``/oauth/introspect`` answers.

Framework-free. :class:`Introspector` takes a token of either kind: a refresh
token (``ktr_...``, looked up in its family) or an access token (a JWT, verified
through the bearer path and always checked against revocations, whatever the
mode: this is what a downstream verifier asks for strict revocation). Anything
not active is exactly ``{"active": false}``, so nothing about it leaks.
"""

from __future__ import annotations

from typing import Any, Final

from keyturn.clock import Clock
from keyturn.errors import InvalidToken
from keyturn.settings import Settings
from keyturn.stores.protocols import ClientStore, UserStore
from keyturn.stores.records import RefreshFamily, RefreshToken
from keyturn.tokens.bearer import BearerAuthenticator
from keyturn.tokens.refresh import RefreshFamilies
from keyturn.tokens.revocation import RevocationReplica

__all__ = ["Introspector"]

_INACTIVE: Final = {"active": False}


class Introspector:
    """Describe a token (RFC 7662).

    Args:
        bearer: verifies access tokens and reads their users (through its cache).
        families: refresh families.
        revocations: the in-process revocation replica.
        users: accounts (a refresh token's user is read directly).
        settings: ``public_issuer`` and ``token_audience`` for refresh answers.
        clock: the time.
    """

    def __init__(
        self,
        *,
        bearer: BearerAuthenticator,
        families: RefreshFamilies,
        revocations: RevocationReplica,
        users: UserStore,
        settings: Settings,
        clock: Clock,
        clients: ClientStore | None = None,
    ) -> None:
        self.bearer = bearer
        self.families = families
        self.revocations = revocations
        self.users = users
        self.clients = clients
        self.settings = settings
        self.clock = clock

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
        if claims.for_client:  # client_credentials: alive while its client is
            if self.clients is None or await self.clients.get(claims.sub) is None:
                return dict(_INACTIVE)
        else:
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
        }
        if claims.sid:
            answer["sid"] = claims.sid
        if claims.client_id is not None:
            answer["client_id"] = claims.client_id
        if claims.jkt is not None:  # RFC 9449 section 6.2
            answer["cnf"] = {"jkt": claims.jkt}
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
        if family.dpop_jkt is not None:
            answer["cnf"] = {"jkt": family.dpop_jkt}
        return answer
