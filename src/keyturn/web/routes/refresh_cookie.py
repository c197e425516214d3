"""The SPA refresh cookie on the OAuth endpoints (``--refresh-cookie``, off by default).

SPA refresh-cookie mode (``--refresh-cookie``, off by default): a token request
with ``refresh_cookie=true`` gets its refresh token as the ``HttpOnly; Secure;
SameSite=Strict`` cookie ``__Secure-keyturn_refresh`` (``Path=<prefix>/oauth/token``)
instead of in the body, which carries ``refresh_csrf`` (the token's double-submit
proof) in its place. A ``refresh_token`` grant without ``refresh_token`` in the
body then uses the cookie, and must pass :func:`~keyturn.web.authn.origins.check_same_origin`
and send ``X-CSRF-Token: <refresh_csrf>``, or gets 403 ``csrf_failed``; its answer
rotates the cookie. A refused cookie (``invalid_grant``) is cleared. ``/oauth/revoke``
with ``refresh_cookie=true`` clears the cookie too, and, given an access token,
also ends its refresh family (the one the cookie held): the cookie itself is never
sent there, its ``Path`` is the token endpoint. Every request with
``refresh_cookie=true`` must pass :func:`~keyturn.web.authn.origins.check_same_origin` as
well, or gets 403 ``csrf_failed`` and no cookie: another site must not plant its own
refresh token in the browser, nor clear the user's (issue #10 item 5).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from fastapi import Request
from fastapi.responses import JSONResponse

from keyturn import csrf
from keyturn.csrf import allowed_origins, check_refresh_csrf, refresh_csrf_token
from keyturn.errors import InvalidRequest
from keyturn.web.authn.cookies import (
    REFRESH_COOKIE,
    TOKEN_ENDPOINT,
    read_cookie,
    refresh_cookie_path,
    set_refresh_cookie,
)
from keyturn.web.authn.origins import check_same_origin
from keyturn.web.dependencies import get_keyturn
from keyturn.web.errors import OAUTH_NO_STORE

if TYPE_CHECKING:
    from keyturn.runtime import Keyturn
    from keyturn.tokens.grants import TokenResponse

__all__ = ["REFRESH_COOKIE_FIELD", "cookie_answer", "cookie_refresh_token", "wants_refresh_cookie"]

#: The form field asking for the refresh token in a cookie (SPA mode).
REFRESH_COOKIE_FIELD: Final = "refresh_cookie"


def wants_refresh_cookie(request: Request, form: dict[str, str]) -> bool:
    """Whether the caller asked for the refresh cookie (``refresh_cookie=true``).

    ``true`` is only accepted from the server's own site (or an allowed
    origin): the answer sets or clears the cookie in the caller's browser.

    Raises:
        InvalidRequest: a value other than ``true``/``false``, or ``true`` while
            the server runs without ``--refresh-cookie``.
        CsrfFailed: ``true`` on a cross-site request.
    """
    value = form.get(REFRESH_COOKIE_FIELD)
    if value is None or value == "false":
        return False
    if value != "true":
        raise InvalidRequest(f"Parameter '{REFRESH_COOKIE_FIELD}' must be true or false.")
    settings = get_keyturn(request).settings
    if not settings.refresh_cookie:
        raise InvalidRequest("This server does not issue refresh cookies.")
    # Setting or clearing the cookie is a browser side effect: same site only.
    check_same_origin(request.scope, allowed_origins(settings))
    return True


def cookie_refresh_token(request: Request) -> str | None:
    """The refresh token of the request's cookie, once both CSRF halves pass;
    None when the server does not use refresh cookies or the request has none
    (absent, sent twice, or malformed).

    Raises:
        CsrfFailed: a cross-site request, or no or the wrong ``X-CSRF-Token``.
    """
    keyturn: Keyturn = get_keyturn(request)
    if not keyturn.settings.refresh_cookie:
        return None
    value = read_cookie(request.scope.get("headers", ()), REFRESH_COOKIE)
    if value is None:
        return None
    check_same_origin(request.scope, allowed_origins(keyturn.settings))
    proofs = request.headers.getlist(csrf.HEADER)
    check_refresh_csrf(value, proofs[0] if len(proofs) == 1 else None)
    return value


def cookie_answer(request: Request, issued: TokenResponse) -> JSONResponse:
    """The token answer with the refresh token moved into the cookie; the body
    carries ``refresh_csrf`` instead."""
    refresh_token = issued.refresh_token
    if refresh_token is None:  # both grants issue one; nothing to move otherwise
        return JSONResponse(issued.to_dict(), headers=dict(OAUTH_NO_STORE))
    body = issued.to_dict()
    del body["refresh_token"]
    body["refresh_csrf"] = refresh_csrf_token(refresh_token)
    response = JSONResponse(body, headers=dict(OAUTH_NO_STORE))
    max_age = issued.refresh_expires_in
    set_refresh_cookie(
        response,
        refresh_token,
        path=refresh_cookie_path(request.scope, TOKEN_ENDPOINT),
        max_age=max_age if max_age is not None else get_keyturn(request).settings.refresh_token_ttl,
    )
    return response
