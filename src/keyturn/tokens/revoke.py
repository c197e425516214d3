"""Ending tokens: RFC 7009 revocation, a bearer caller's sign-out, a token
device ended from the sign-ins list, and tokens exposed in a URL.

Framework-free. :meth:`TokenRevoker.revoke` takes a token of either kind: a
refresh token (``ktr_...``, looked up in its family) or an access token (a JWT,
verified through the bearer path); it is what ``/oauth/revoke`` calls.

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

from keyturn.audit import AuditLog
from keyturn.clock import Clock
from keyturn.errors import InvalidClient, InvalidToken, NotAuthenticated, NotFound
from keyturn.oauth.clients import Clients
from keyturn.tokens.bearer import BearerAuthenticator
from keyturn.tokens.claims import AccessTokenClaims
from keyturn.tokens.refresh import RefreshFamilies
from keyturn.tokens.revocation import RevocationReplica

__all__ = ["TokenRevoker"]

#: Longest family handle worth a store lookup (ours are 16 characters).
_MAX_FAMILY_ID = 64


class TokenRevoker:
    """Ends access tokens and refresh families, audited.

    Args:
        bearer: verifies access tokens (following key rotations).
        families: refresh families.
        revocations: the in-process revocation replica.
        clients: OAuth clients (whether a token's client is confidential).
        audit: where events go.
        clock: the time.
    """

    def __init__(
        self,
        *,
        bearer: BearerAuthenticator,
        families: RefreshFamilies,
        revocations: RevocationReplica,
        clients: Clients,
        audit: AuditLog,
        clock: Clock,
    ) -> None:
        self.bearer = bearer
        self.families = families
        self.revocations = revocations
        self.clients = clients
        self.audit = audit
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
        if end_family and claims.sid:
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

    async def sign_out(
        self, claims: AccessTokenClaims, *, ip: str | None = None, user_agent: str | None = None
    ) -> None:
        """Sign out with a bearer token (``POST /auth/logout``): deny it, and end
        its refresh family.

        Raises:
            StoreUnavailable: a store is unreachable.
        """
        await self.revocations.revoke_jti(claims.jti, claims.exp)
        family = await self.families.store.get_family(claims.sid) if claims.sid else None
        if family is not None and family.user_id == claims.sub:
            await self.families.revoke(family.id)
        self.audit.record(
            "sign_out", user_id=claims.sub, ip=ip, user_agent=user_agent, session=claims.sid
        )

    async def end_family(self, user_id: str, family_id: str, *, ip: str | None = None) -> None:
        """End one of the user's token sign-ins by its handle (the ``"kind":
        "token"`` rows of the sign-ins list).

        Raises:
            NotFound: no such live family, or it is another user's.
            StoreUnavailable: a store is unreachable.
        """
        if not isinstance(family_id, str) or len(family_id) > _MAX_FAMILY_ID:
            raise NotFound()
        family = await self.families.store.get_family(family_id)
        if family is None or family.user_id != user_id or not family.is_live(self.clock.now()):
            raise NotFound()
        await self.families.revoke(family.id)
        self.audit.record("session_revoked", user_id=user_id, ip=ip, session=family.id, via="token")

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
