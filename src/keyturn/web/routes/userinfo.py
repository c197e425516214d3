"""``GET|POST /oauth/userinfo`` (OIDC Core 1.0 section 5.3): claims about the
user a bearer access token was issued for, by the scopes it carries.

The token must carry ``openid`` (else 403 ``insufficient_scope`` with
``WWW-Authenticate: Bearer error="insufficient_scope", scope="openid"``, RFC 6750
section 3.1); a missing or refused token is 401 with ``WWW-Authenticate:
Bearer`` (``error="invalid_token"`` when one was sent). A session cookie is not
a userinfo credential: the endpoint is for relying parties holding tokens.
The answer is ``sub`` always and ``email`` / ``email_verified`` with ``email``;
``Cache-Control: no-store``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from keyturn.errors import InsufficientScope, KeyturnError, NotAuthenticated
from keyturn.web.dependencies import get_keyturn, require_principal
from keyturn.web.errors import OAUTH_NO_STORE, error_response
from keyturn.web.routes.openapi_docs import answer, error_responses

__all__ = ["USERINFO_PATH", "router"]

USERINFO_PATH = "/oauth/userinfo"

router = APIRouter(tags=["openid connect"])

_USERINFO = {
    "type": "object",
    "properties": {
        "sub": {"type": "string"},
        "email": {"type": "string"},
        "email_verified": {"type": "boolean"},
    },
    "required": ["sub"],
}


async def _claims(request: Request) -> dict[str, Any]:
    principal = require_principal(request)
    if principal.via != "token":
        raise NotAuthenticated()
    if "openid" not in principal.scopes:
        raise InsufficientScope("openid")
    claims: dict[str, Any] = {"sub": principal.subject}
    if "email" in principal.scopes:
        user = await get_keyturn(request).storage.users.get(principal.subject)
        if user is None or user.disabled:
            raise NotAuthenticated()
        claims["email"] = user.email
        verified = getattr(user, "email_verified", None)
        if isinstance(verified, bool):
            claims["email_verified"] = verified
    return claims


_RESPONSES = error_responses(401, 403, _200=answer("The user's claims.", _USERINFO))


# One route serves both methods, so a 405 names both in ``Allow``; the GET and
# POST routes below it only document the two operations (FastAPI gives a
# two-method route one duplicated operationId) and are shadowed by it.
@router.api_route(USERINFO_PATH, methods=["GET", "POST"], include_in_schema=False)
async def userinfo(request: Request) -> JSONResponse:
    """The claims the access token's scopes allow (``sub``, and ``email`` /
    ``email_verified`` with the ``email`` scope)."""
    try:
        claims = await _claims(request)
    except KeyturnError as exc:
        response = error_response(exc)
        response.headers.update(OAUTH_NO_STORE)
        return response
    return JSONResponse(claims, headers=dict(OAUTH_NO_STORE))


@router.get(USERINFO_PATH, responses=_RESPONSES)
async def userinfo_get(request: Request) -> JSONResponse:
    """The claims the access token's scopes allow (``sub``, and ``email`` /
    ``email_verified`` with the ``email`` scope)."""
    return await userinfo(request)


@router.post(USERINFO_PATH, responses=_RESPONSES)
async def userinfo_post(request: Request) -> JSONResponse:
    """The same as ``GET`` (OIDC Core 5.3.1: both methods are supported)."""
    return await userinfo(request)
