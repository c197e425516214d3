"""The ``authorization_code`` grant (RFC 6749 section 4.1.3, OAuth 2.1), framework-free.

The client has already authenticated (``client_secret_basic``,
``client_secret_post``, or ``none`` for a public client, whose proof is PKCE).
:meth:`CodeGrant.exchange` redeems the code once for that client, redirect URI
and verifier (:class:`keyturn.oauth.codes.AuthorizationCodes`), then opens a
refresh family whose id is the code's ``grant_id`` and which belongs to the
browser session the code was issued in (``RefreshFamily.session_id``): ending
that session ends the family and its access tokens
(:class:`keyturn.tokens.session_link.SessionTokens`). The access token's ``sid``
is the family. A family is opened even for a client without the
``refresh_token`` grant (no refresh token is returned then), so that every
token of a code has one handle to revoke.

With ``openid`` among the granted scopes the answer carries an ID token
(:mod:`keyturn.oidc.id_token`) signed with the client's ``id_token_alg``, whose
``sid`` is the browser session; the session is remembered as one the client
holds an ID token in (for back-channel logout). A code granted
``offline_access`` opens a family that is *not* rooted in the browser session:
signing out ends the session's other apps but leaves that offline grant alive
(OIDC Core section 11), until it is revoked or the user signs out everywhere.

A code presented again (:class:`~keyturn.errors.CodeReplayed`) is
``invalid_grant`` and revokes everything the first redemption issued: the
family ``grant_id`` and every access token with that ``sid``, including tokens
a concurrent first redemption is issuing at the same moment (the ``sid`` is
denied before the family exists, and the winner checks the denial after
opening it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

from keyturn.audit import AuditLog
from keyturn.clock import Clock
from keyturn.errors import CodeReplayed, InvalidGrant
from keyturn.oauth.codes import AuthorizationCodes
from keyturn.oidc.id_token import IdTokenClaims
from keyturn.stores.protocols import UserStore
from keyturn.stores.records import User
from keyturn.tokens.access import TokenIssuer
from keyturn.tokens.dpop_binding import DpopBinding, token_type
from keyturn.tokens.grants import TokenResponse
from keyturn.tokens.refresh import RefreshFamilies

__all__ = ["CodeGrant"]

#: Is the browser session with this public handle still live?
SessionAlive = Callable[[str], Awaitable[bool]]
#: Signs ID token claims with an algorithm, binding the access token (``at_hash``).
IdTokenSigner = Callable[[IdTokenClaims, str, str], Awaitable[str]]
#: Remembers that a client got an ID token in a browser session:
#: ``(session_handle, client_id, user_id)``.
IdTokenSent = Callable[[str, str, str], Awaitable[None]]

OPENID_SCOPE = "openid"
OFFLINE_ACCESS_SCOPE = "offline_access"


class CodeGrant:
    """Exchanges authorization codes for tokens.

    Args:
        codes: the code store's single-use redemption.
        families: refresh families (the code's ``grant_id`` is the family id).
        users: accounts (a disabled user gets nothing).
        session_alive: whether the code's browser session still lives (a code
            whose session ended before the exchange is refused).
        issuer: returns the access-token issuer (follows key rotation).
        remember_user: warms the bearer path's user cache.
        audit: where events go.
        clock: the time.
        issuer_url: the ``iss`` of ID tokens.
        sign_id_token: signs ID tokens (None: no ID tokens are issued).
        id_token_sent: records the session a client holds an ID token in.
    """

    def __init__(
        self,
        *,
        codes: AuthorizationCodes,
        families: RefreshFamilies,
        users: UserStore,
        session_alive: SessionAlive,
        issuer: Callable[[], TokenIssuer],
        remember_user: Callable[[User], None],
        audit: AuditLog,
        clock: Clock,
        issuer_url: str = "",
        sign_id_token: IdTokenSigner | None = None,
        id_token_sent: IdTokenSent | None = None,
    ) -> None:
        self.issuer_url = issuer_url
        self._sign_id_token = sign_id_token
        self._id_token_sent = id_token_sent
        self.codes = codes
        self.families = families
        self.users = users
        self.session_alive = session_alive
        self._issuer = issuer
        self._remember_user = remember_user
        self.audit = audit
        self.clock = clock

    async def exchange(
        self,
        code: str,
        *,
        client_id: str,
        grant_types: Collection[str],
        redirect_uri: str,
        code_verifier: str,
        id_token_alg: str = "RS256",  # noqa: S107 (an algorithm name)
        ip: str | None = None,
        user_agent: str | None = None,
        dpop: DpopBinding | None = None,
    ) -> TokenResponse:
        """Redeem ``code`` for the authenticated client ``client_id``.

        Returns ``access_token``, ``expires_in``, ``scope``, when
        ``grant_types`` has ``refresh_token`` a refresh token, and with the
        ``openid`` scope an ID token signed with ``id_token_alg``. ``dpop`` (a
        verified proof) binds the access token and, for a public client, the
        refresh family to the proof's key (RFC 9449 section 5).

        Raises:
            InvalidGrant: unknown, expired, used or another client's code, a
                wrong redirect URI or verifier, a disabled user, or an ended
                browser session (one answer for every reason).
            StoreUnavailable: a store cannot be reached.
        """
        try:
            grant = await self.codes.redeem(
                code, client_id=client_id, redirect_uri=redirect_uri, code_verifier=code_verifier
            )
        except CodeReplayed as replay:
            await self._revoke_replayed(replay, ip=ip, user_agent=user_agent)
            raise InvalidGrant() from None
        user = await self.users.get(grant.user_id)
        if user is None or user.disabled or not await self.session_alive(grant.session_id):
            raise InvalidGrant()
        scope = " ".join(grant.scopes)
        issued = await self.families.start(
            user.id,
            client_id=client_id,
            scope=scope,
            ip=ip,
            user_agent=user_agent,
            family_id=grant.grant_id,
            # offline_access outlives the browser session (OIDC Core section 11).
            session_id=None if OFFLINE_ACCESS_SCOPE in grant.scopes else grant.session_id,
            dpop_jkt=dpop.family_jkt if dpop is not None else None,
        )
        family = issued.family  # its id is grant.grant_id: a replay names it without a write
        if self.families.revocations.is_sid_revoked(family.id):
            # A replay of this code won the race to revoke: end what we just opened.
            await self.families.revoke(family.id)
        # The session may have ended between the check above and the family's
        # insert; its listener then found nothing to end, so check once more.
        elif not await self.session_alive(grant.session_id):
            await self.families.revoke(family.id)
            raise InvalidGrant()
        token, claims = self._issuer().issue(
            user.id,
            sid=family.id,
            roles=user.roles,
            scope=scope,
            client_id=client_id,
            auth_time=grant.auth_time,
            jkt=dpop.jkt if dpop is not None else None,
            amr=grant.amr,  # how the browser session signed in (mfa, #15)
        )
        id_token = None
        if OPENID_SCOPE in grant.scopes and self._sign_id_token is not None:
            claims_in = IdTokenClaims(
                issuer=self.issuer_url,
                subject=user.id,
                client_id=client_id,
                auth_time=grant.auth_time,
                session_handle=grant.session_id,
                scopes=grant.scopes,
                nonce=grant.nonce,
                amr=grant.amr,
                email=user.email,
                email_verified=getattr(user, "email_verified", None),
            )
            if self._id_token_sent is not None:
                await self._id_token_sent(grant.session_id, client_id, user.id)
            id_token = await self._sign_id_token(claims_in, id_token_alg, token)
        self._remember_user(user)
        self.audit.record(
            "sign_in",
            user_id=user.id,
            email=user.email,
            ip=ip,
            user_agent=user_agent,
            session=family.id,
            via="authorization_code",
            client_id=client_id,
        )
        refresh = issued.refresh_token if "refresh_token" in grant_types else None
        now = self.clock.now()
        refresh_ttl = self.families.settings.refresh_token_ttl
        return TokenResponse(
            token,
            claims.exp - claims.iat,
            claims,
            refresh_token=refresh,
            scope=scope,
            refresh_expires_in=(
                max(0, int(min(now + refresh_ttl, family.expires_at) - now)) if refresh else None
            ),
            id_token=id_token,
            token_type=token_type(dpop),
        )

    async def _revoke_replayed(
        self, replay: CodeReplayed, *, ip: str | None, user_agent: str | None
    ) -> None:
        grant = replay.grant
        await self.families.revocations.revoke_sids([grant.grant_id])
        await self.families.revoke(grant.family_id or grant.grant_id)
        self.audit.record(
            "code_replay_detected",
            outcome="revoked",
            user_id=grant.user_id,
            ip=ip,
            user_agent=user_agent,
            session=grant.grant_id,
            client_id=grant.client_id,
        )
