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

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from keyturn.errors import InvalidRequest, InvalidToken, KeyturnError, NotAuthenticated
from keyturn.tokens.claims import AccessTokenClaims
from keyturn.tokens.remote import RemoteVerifier
from keyturn.web.authn.scope import bearer_token, query_token
from keyturn.web.errors import error_response

__all__ = ["bearer_claims", "install_error_handler"]


def bearer_claims(
    verifier: RemoteVerifier,
) -> Callable[[Request], Awaitable[AccessTokenClaims]]:
    """A dependency returning the verified claims of the request's bearer token.

    Only ``Authorization: Bearer`` is read; an ``access_token`` query parameter
    is refused (RFC 6750 section 2.3).

    Raises (from the dependency):
        NotAuthenticated: no bearer token (401 ``WWW-Authenticate: Bearer``).
        InvalidToken: the token is refused for any reason (one 401 for all).
        InvalidRequest: a token in the query next to a header (400).
        IssuerUnavailable: the issuer cannot be reached (503).
    """

    async def dependency(request: Request) -> AccessTokenClaims:
        token = bearer_token(request.scope)
        if query_token(request.scope):
            if token is not None:
                raise InvalidRequest("Send the access token in one place only.")
            raise InvalidToken("query_string")
        if token is None:
            raise NotAuthenticated()
        if not token:
            raise InvalidToken("empty")
        return await verifier.verify(token)

    return dependency


async def _keyturn_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KeyturnError)
    return error_response(exc)


def install_error_handler(app: FastAPI) -> None:
    """Render keyturn errors (and only those) the way keyturn's server does."""
    app.add_exception_handler(KeyturnError, _keyturn_error)
