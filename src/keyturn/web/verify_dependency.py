"""A FastAPI dependency for downstream services: bearer token in, claims out.

::

    from fastapi import Depends, FastAPI
    from keyturn.verify import RemoteVerifier
    from keyturn.web.verify_dependency import bearer_claims, install_error_handler

    verifier = RemoteVerifier("https://auth.example.com", audience="https://api.example.com")
    app = FastAPI()
    install_error_handler(app)
    Claims = Annotated[AccessTokenClaims, Depends(bearer_claims(verifier))]

    @app.get("/orders")
    async def orders(claims: Claims) -> list[Order]: ...

Refusals are keyturn errors: :func:`install_error_handler` renders them as
keyturn's own server does (``{"error", "detail"}``, 401 with
``WWW-Authenticate: Bearer``, ``error="invalid_token"`` when a token was sent;
503 ``issuer_unavailable`` when the issuer cannot be reached). Apps built with
:func:`keyturn.web.app.create_app` already have that handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from keyturn.errors import (
    InvalidDpopToken,
    InvalidRequest,
    InvalidToken,
    KeyturnError,
    NotAuthenticated,
)
from keyturn.tokens.claims import AccessTokenClaims
from keyturn.tokens.dpop_setup import request_url
from keyturn.tokens.remote import RemoteVerifier
from keyturn.web.authn.scope import access_token, query_token
from keyturn.web.errors import error_response

__all__ = ["bearer_claims", "install_error_handler"]


def bearer_claims(
    verifier: RemoteVerifier, *, origin: str | None = None
) -> Callable[[Request], Awaitable[AccessTokenClaims]]:
    """A dependency returning the verified claims of the request's access token.

    ``Authorization: Bearer`` and ``Authorization: DPoP`` (with its ``DPoP``
    proof, RFC 9449, checked by :meth:`RemoteVerifier.verify_dpop`) are read; a
    DPoP-bound token sent as ``Bearer`` is refused; an ``access_token`` query
    parameter is refused (RFC 6750 section 2.3). ``origin``
    (``https://api.example.com``) is this service's public scheme and host, which
    proofs' ``htu`` must name; by default the URL the server sees (set it behind a
    proxy).

    Raises (from the dependency):
        NotAuthenticated: no bearer token (401 ``WWW-Authenticate: Bearer``).
        InvalidToken: the token is refused for any reason (one 401 for all).
        InvalidRequest: a token in the query next to a header (400).
        InvalidDpopProof, UseDpopNonce: a bad DPoP proof (401 with a DPoP challenge).
        IssuerUnavailable: the issuer cannot be reached (503).
    """

    async def dependency(request: Request) -> AccessTokenClaims:
        presented = access_token(request.scope)
        if query_token(request.scope):
            if presented is not None:
                raise InvalidRequest("Send the access token in one place only.")
            raise InvalidToken("query_string")
        if presented is None:
            raise NotAuthenticated()
        scheme, token = presented
        if scheme == "dpop":
            if not token:
                raise InvalidDpopToken("empty")
            base = origin if origin is not None else _origin_of(str(request.base_url))
            url = request_url(base, request.scope.get("raw_path"), request.url.path)
            return await verifier.verify_dpop(
                token, request.headers.getlist("dpop"), method=request.method, url=url
            )
        if not token:
            raise InvalidToken("empty")
        return await verifier.verify(token)

    return dependency


def _origin_of(url: str) -> str:
    """``scheme://authority`` of ``url``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def _keyturn_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KeyturnError)
    return error_response(exc)


def install_error_handler(app: FastAPI) -> None:
    """Render keyturn errors (and only those) the way keyturn's server does."""
    app.add_exception_handler(KeyturnError, _keyturn_error)
