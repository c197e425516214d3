"""Who is calling: one request's credential resolved into the scope, once.

:class:`CredentialResolver` fills the keys of :mod:`.scope`. Credentials, in order:

1. ``Authorization: Bearer ...`` (or ``DPoP ...``), resolved by ``bearer=`` (by default
   :func:`token_authenticator`: :meth:`Keyturn.bearer.authenticate
   <keyturn.tokens.bearer.BearerAuthenticator.authenticate>`). Every failure is
   the one :class:`~keyturn.errors.InvalidToken` (401 with ``WWW-Authenticate:
   Bearer error="invalid_token"``); only a store outage is reported as such
   (503). The session cookie is then ignored: a bearer request never silently
   falls back to cookie authentication (SEC-31). The verified claims are kept in
   ``scope["keyturn.token_claims"]``. A DPoP-bound token (``cnf.jkt``) is
   accepted only as ``Authorization: DPoP`` with a valid ``DPoP`` proof of its
   key over this request (RFC 9449 section 7, :mod:`keyturn.tokens.dpop_binding`),
   checked here so that whatever answers from the resolved caller (the early
   ``/auth/whoami``, routes, ``require``) sees only checked callers; refusals
   carry a ``DPoP`` challenge. A bearer token costs nothing more.
2. The ``__Host-keyturn_session`` cookie, and nothing else (SEC-05).

An ``access_token`` in the query string is never accepted (RFC 6750 section 2.3,
SEC-63): alone it is an invalid token, next to an ``Authorization`` header it is
400 ``invalid_request`` (one request, one method). Either way a token there has
leaked (URLs are logged, kept in history, sent as ``Referer``), so one that
verifies is revoked (:meth:`~keyturn.tokens.revoke.TokenRevoker.revoke_exposed`)
before the answer; only requests with ``access_token`` in the query pay for it.

The resolver checks no CSRF: :class:`~keyturn.web.authn.middleware.AuthnMiddleware`
and the Starlette backend (:mod:`keyturn.web.starlette`) apply the gate of
:mod:`.csrf` after it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Final

from starlette.types import Scope

from keyturn.errors import (
    InvalidDpopProof,
    InvalidDpopToken,
    InvalidRequest,
    InvalidToken,
    NotAuthenticated,
    StoreUnavailable,
    UseDpopNonce,
)
from keyturn.principal import Principal
from keyturn.tokens.claims import AccessTokenClaims
from keyturn.tokens.dpop_binding import check_resource_proof
from keyturn.tokens.dpop_setup import public_origin, request_url
from keyturn.web.authn.cookies import SESSION_COOKIE, read_cookie
from keyturn.web.authn.scope import (
    AUTH_ERROR_KEY,
    CREDENTIAL_KEY,
    DPOP_NONCE_KEY,
    PRINCIPAL_KEY,
    SESSION_SCOPE_KEY,
    TOKEN_CLAIMS_KEY,
    VALIDATED_SESSION_KEY,
    access_token,
    dpop_proofs,
    header,
    query_tokens,
)

if TYPE_CHECKING:
    from keyturn.runtime import Keyturn

__all__ = ["MAX_EXPOSED_TOKENS", "BearerResolver", "CredentialResolver", "token_authenticator"]

logger = logging.getLogger("keyturn.web")

#: At most this many distinct ``access_token`` values of one query are revoked.
MAX_EXPOSED_TOKENS: Final = 4

#: Resolves a bearer token to a principal or raises ``InvalidToken``.
BearerResolver = Callable[[str, Scope], Awaitable[Principal]]


def _token_error(scheme: str, reason: str) -> InvalidToken:
    """The refusal of a token sent with ``scheme``: a ``DPoP`` challenge for ``DPoP``."""
    return InvalidDpopToken(reason) if scheme == "dpop" else InvalidToken(reason)


def token_authenticator(keyturn: Keyturn) -> BearerResolver:
    """The default bearer resolver: ``keyturn.bearer.authenticate`` (signature,
    claims and revocation, in process), keeping the claims in the scope."""

    async def authenticate(token: str, scope: Scope) -> Principal:
        claims, principal = await keyturn.bearer.authenticate(token)
        scope[TOKEN_CLAIMS_KEY] = claims
        return principal

    return authenticate


class CredentialResolver:
    """Resolves the caller of a scope (see the module doc).

    Args:
        keyturn: supplies ``sessions`` (validation), ``bearer`` and
            ``token_revoker`` (tokens sent in a URL).
        bearer: resolves bearer tokens; None means :func:`token_authenticator`.
    """

    def __init__(self, keyturn: Keyturn, *, bearer: BearerResolver | None = None) -> None:
        self.keyturn = keyturn
        self.bearer = bearer if bearer is not None else token_authenticator(keyturn)

    async def resolve(self, scope: Scope) -> None:
        """Resolve the caller of ``scope`` into the scope keys, without the CSRF check.

        Raises:
            InvalidRequest: an access token both in the query and in a header.
            StoreUnavailable: a store the check needs is down.
        """
        scope[PRINCIPAL_KEY] = None
        scope[SESSION_SCOPE_KEY] = None
        scope.pop(VALIDATED_SESSION_KEY, None)
        scope[CREDENTIAL_KEY] = None
        presented = access_token(scope)
        exposed = query_tokens(scope)
        if exposed is not None:
            await self._revoke_exposed(exposed)
            if presented is not None or header(scope, b"authorization") is not None:
                raise InvalidRequest("Send the access token in one place only.")
            scope[CREDENTIAL_KEY] = "bearer"
            scope[AUTH_ERROR_KEY] = InvalidToken("query_string")
        elif presented is not None:
            scope[CREDENTIAL_KEY] = "bearer"
            await self._resolve_bearer(scope, *presented)
        else:
            await self._resolve_session(scope)

    async def _revoke_exposed(self, values: list[str]) -> None:
        """Revoke the valid access tokens among ``values`` (sent in a URL).

        Raises:
            StoreUnavailable: a revocation could not be stored.
        """
        for value in list(dict.fromkeys(value for value in values if value))[:MAX_EXPOSED_TOKENS]:
            try:
                if await self.keyturn.token_revoker.revoke_exposed(value):
                    logger.warning("revoked an access token that was sent in a URL")
            except StoreUnavailable:
                logger.error("could not store the revocation of an access token sent in a URL")
                raise

    async def _resolve_bearer(self, scope: Scope, scheme: str, token: str) -> None:
        """Resolve an access token sent as ``Bearer`` or ``DPoP``; no cookie
        fallback, whatever the outcome. The DPoP binding is checked here, before
        anything answers for the caller (:meth:`_check_dpop`).

        Raises:
            StoreUnavailable: a store the check needs is down (503, never an accept).
        """
        if not token:
            scope[AUTH_ERROR_KEY] = _token_error(scheme, "empty")
            return
        try:
            principal = await self.bearer(token, scope)
            await self._check_dpop(scope, scheme, token)
            scope[PRINCIPAL_KEY] = principal
        except StoreUnavailable:
            raise
        except (InvalidDpopProof, UseDpopNonce, InvalidDpopToken) as exc:
            scope[AUTH_ERROR_KEY] = exc
        except InvalidToken as exc:
            scope[AUTH_ERROR_KEY] = _token_error(scheme, exc.reason) if scheme == "dpop" else exc
        except NotAuthenticated:
            scope[AUTH_ERROR_KEY] = _token_error(scheme, "not_authenticated")
        except Exception as exc:  # fail closed: a surprise is a refused token, not a 500
            logger.error("bearer authentication failed unexpectedly", exc_info=exc)
            scope[AUTH_ERROR_KEY] = _token_error(scheme, "unexpected")
        if scope[PRINCIPAL_KEY] is None:
            scope.pop(TOKEN_CLAIMS_KEY, None)

    async def _check_dpop(self, scope: Scope, scheme: str, token: str) -> None:
        """RFC 9449 section 7: a bound token only as ``DPoP`` with a proof of its key
        over this request, an unbound one only as ``Bearer``. A bearer resolver that
        leaves no claims in the scope cannot be checked, so ``DPoP`` is refused then.

        Raises:
            InvalidDpopToken, InvalidDpopProof, UseDpopNonce: refused.
            StoreUnavailable: the replay cache cannot answer.
        """
        claims = scope.get(TOKEN_CLAIMS_KEY)
        if not isinstance(claims, AccessTokenClaims):
            if scheme == "dpop":
                raise InvalidDpopToken("no_claims")
            return
        if scheme != "dpop" and claims.jkt is None:
            return  # the plain bearer hot path: nothing more to do
        keyturn = self.keyturn
        url = request_url(
            public_origin(keyturn.settings), scope.get("raw_path"), str(scope.get("path", ""))
        )
        proof = await check_resource_proof(
            keyturn.dpop,
            claims,
            scheme=scheme,
            token=token,
            proofs=dpop_proofs(scope),
            method=str(scope.get("method", "GET")),
            url=url,
        )
        if proof is not None and proof.fresh_nonce is not None:
            scope[DPOP_NONCE_KEY] = proof.fresh_nonce

    async def _resolve_session(self, scope: Scope) -> None:
        secret = read_cookie(scope.get("headers", ()), SESSION_COOKIE)
        if secret is None:
            return
        scope[CREDENTIAL_KEY] = "session"
        try:
            validated = await self.keyturn.sessions.validate(secret)
        except NotAuthenticated as exc:
            scope[AUTH_ERROR_KEY] = exc
            return
        scope[SESSION_SCOPE_KEY] = secret
        scope[VALIDATED_SESSION_KEY] = validated
        principal: Principal | None = validated.memo.get("principal")
        if principal is None:  # a pure function of the read: built once per read
            session, user = validated.session, validated.user
            principal = validated.memo["principal"] = Principal(
                subject=user.id,
                email=user.email,
                roles=tuple(user.roles),
                via="session",
                session_id=session.handle,
                expires_at=session.ends_at,
                auth_time=session.auth_time,
                amr=session.amr,
            )
        scope[PRINCIPAL_KEY] = principal
