"""The OAuth 2.0 style endpoints (SPEC "OAuth 2.0 style endpoints"): ``/oauth/*``.

- ``POST /oauth/token``: the ``authorization_code``, ``refresh_token`` and
  ``client_credentials`` grants and, with ``--password-grant``, the ``password``
  grant (RFC 6749 sections 4.1.3, 6, 4.4 and 4.3);
- ``POST /oauth/revoke``: token revocation (RFC 7009);
- ``POST /oauth/introspect``: token introspection for confidential clients
  (RFC 7662).

Errors are RFC 6749 bodies ``{"error", "error_description"}``, rendered by
:func:`keyturn.web.errors.oauth_error_response`; every answer carries
``Cache-Control: no-store`` and ``Pragma: no-cache``.

Bodies are read and clients authenticated in :mod:`keyturn.web.routes.oauth_forms`.
None of these endpoints uses the session cookie, so the session CSRF check does
not apply to them (:data:`OAUTH_PATHS`).

SPA refresh-cookie mode (``--refresh-cookie``) is :mod:`keyturn.web.routes.refresh_cookie`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from keyturn.errors import (
    InvalidClient,
    InvalidCredentials,
    InvalidRequest,
    KeyturnError,
    NotAuthenticated,
    TooManyAttempts,
    UnsupportedGrantType,
)
from keyturn.web.authn.cookies import (
    TOKEN_ENDPOINT,
    clear_refresh_cookie,
    refresh_cookie_path,
)
from keyturn.web.dependencies import client_ip, get_keyturn, user_agent
from keyturn.web.errors import OAUTH_NO_STORE, oauth_error_response
from keyturn.web.routes.dpop_token import dpop_binding
from keyturn.web.routes.oauth_forms import authenticate_client, read_form, required
from keyturn.web.routes.openapi_docs import (
    ACCESS_TOKEN,
    INTROSPECTION,
    answer,
    form_request,
    oauth_responses,
)
from keyturn.web.routes.refresh_cookie import (
    REFRESH_COOKIE_FIELD,
    cookie_answer,
    cookie_refresh_token,
    wants_refresh_cookie,
)

if TYPE_CHECKING:
    from keyturn.runtime import Keyturn
    from keyturn.settings import Settings
    from keyturn.tokens.dpop_binding import DpopBinding
    from keyturn.tokens.grants import TokenResponse

router = APIRouter(prefix="/oauth", tags=["oauth"])

#: The endpoints that authenticate with client credentials or a token in the body,
#: never with the session cookie: exempt from the session CSRF check.
OAUTH_PATHS: tuple[str, ...] = (
    "/oauth/token",
    "/oauth/revoke",
    "/oauth/introspect",
    "/oauth/par",  # client-authenticated (RFC 9126), never the cookie
    "/oauth/userinfo",  # OIDC (#13): bearer tokens only
    "/oauth/logout",  # OIDC (#13): cross-site RP posts; checks its own form's CSRF
)

TOKEN_TYPE_HINTS = frozenset({"access_token", "refresh_token"})

#: The grant types ``POST /oauth/token`` implements, in the order the RFC 8414
#: metadata lists them; :func:`enabled_grant_types` drops the password grant
#: unless ``--password-grant`` is set.
TOKEN_GRANT_TYPES: tuple[str, ...] = (
    "authorization_code",
    "refresh_token",
    "client_credentials",
    "password",
)


def enabled_grant_types(settings: Settings) -> tuple[str, ...]:
    """The grant types this server answers (``grant_types_supported``); any other
    is ``unsupported_grant_type``."""
    return tuple(
        grant for grant in TOKEN_GRANT_TYPES if grant != "password" or settings.password_grant
    )


def _token_json(response: Any) -> JSONResponse:
    return JSONResponse(response.to_dict(), headers=dict(OAUTH_NO_STORE))


# --- endpoints ------------------------------------------------------------------------

_CLIENT_FIELDS: dict[str, dict[str, Any]] = {"client_id": {}, "client_secret": {}}
_COOKIE_FIELD = {REFRESH_COOKIE_FIELD: {"enum": ["true", "false"]}}


@router.post(
    "/token",
    openapi_extra=form_request(
        {
            "grant_type": {"enum": list(TOKEN_GRANT_TYPES)},
            "username": {},
            "password": {},
            "scope": {},
            "refresh_token": {},
            "code": {},
            "redirect_uri": {},
            "code_verifier": {},
            **_CLIENT_FIELDS,
            **_COOKIE_FIELD,
        },
        required=("grant_type",),
    ),
    responses=oauth_responses(400, 401, 403, 429, _200=answer("Tokens.", ACCESS_TOKEN)),
)
async def token(request: Request) -> Response:
    """The token endpoint: ``grant_type=refresh_token``, ``client_credentials``
    and (with ``--password-grant``) ``password``; ``refresh_cookie=true`` moves
    the refresh token into the SPA cookie."""
    from_cookie = False
    try:
        form = await read_form(request)
        grant_type = required(form, "grant_type")
        if grant_type not in enabled_grant_types(get_keyturn(request).settings):
            raise UnsupportedGrantType()
        to_cookie = wants_refresh_cookie(request, form)
        presented = form.get("refresh_token")
        if grant_type == "refresh_token" and presented is None:
            presented = cookie_refresh_token(request)
            from_cookie = presented is not None
        client_id = await authenticate_client(request, form)
        dpop, fresh_nonce = await dpop_binding(request, client_id)
        # Sign with the newest key: a `keyturn key rotate` elsewhere shows up within
        # the staleness bound (one clock read when nothing is due).
        await get_keyturn(request).keys.reload_if_stale()
        if grant_type == "password":
            issued = await _password_grant(request, form, client_id, dpop)
        elif grant_type == "authorization_code":
            issued = await _code_grant(request, form, client_id, dpop)
        elif grant_type == "client_credentials":
            if client_id is None:
                raise InvalidClient()
            issued = await get_keyturn(request).grants.client_credentials_grant(
                client_id, scope=form.get("scope", ""), ip=client_ip(request), dpop=dpop
            )
        else:
            keyturn: Keyturn = get_keyturn(request)
            issued = await keyturn.grants.refresh_grant(
                presented if presented is not None else required(form, "refresh_token"),
                client_id=client_id,
                ip=client_ip(request),
                user_agent=user_agent(request),
                dpop=dpop,
            )
        # A token that came from the cookie goes back into it, never into the body.
        to_body = not (to_cookie or from_cookie)
        response = _token_json(issued) if to_body else cookie_answer(request, issued)
        if fresh_nonce is not None:
            response.headers["DPoP-Nonce"] = fresh_nonce
        return response
    except KeyturnError as exc:
        response = oauth_error_response(exc)
        if from_cookie and exc.code == "invalid_grant":  # dead: stop sending it
            clear_refresh_cookie(response, path=refresh_cookie_path(request.scope, TOKEN_ENDPOINT))
        return response


async def _code_grant(
    request: Request, form: dict[str, str], client_id: str | None, dpop: DpopBinding | None
) -> TokenResponse:
    """The authorization code grant: the client is authenticated (or, public,
    named by ``client_id``); PKCE's ``code_verifier`` is the rest of the proof."""
    code, redirect_uri = required(form, "code"), required(form, "redirect_uri")
    if client_id is None:
        raise InvalidClient()  # a public client names itself with client_id
    keyturn: Keyturn = get_keyturn(request)
    client = await keyturn.flow_client(client_id)
    if client is None:
        raise InvalidClient()
    return await keyturn.code_grant.exchange(
        code,
        client_id=client_id,
        grant_types=client.grant_types,
        redirect_uri=redirect_uri,
        code_verifier=form.get("code_verifier", ""),
        id_token_alg=client.id_token_alg,
        ip=client_ip(request),
        user_agent=user_agent(request),
        dpop=dpop,
    )


async def _password_grant(
    request: Request, form: dict[str, str], client_id: str | None, dpop: DpopBinding | None
) -> TokenResponse:
    """The resource-owner password grant, throttled and counted like ``/auth/login``."""
    username, password = required(form, "username"), required(form, "password")
    keyturn: Keyturn = get_keyturn(request)
    logins = request.app.state.metrics.logins
    try:
        issued = await keyturn.grants.password_grant(
            username,
            password,
            scope=form.get("scope", ""),
            client_id=client_id,
            ip=client_ip(request),
            user_agent=user_agent(request),
            dpop=dpop,
        )
    except TooManyAttempts:
        logins.labels(outcome="throttled").inc()
        raise
    except (InvalidCredentials, NotAuthenticated, InvalidRequest) as exc:
        if exc.code in ("invalid_grant", "invalid_credentials", "not_authenticated"):
            logins.labels(outcome="failure").inc()
        raise
    logins.labels(outcome="success").inc()
    return issued


@router.post(
    "/revoke",
    response_class=Response,  # 200 with an empty body
    openapi_extra=form_request(
        {"token": {}, "token_type_hint": {}, **_CLIENT_FIELDS, **_COOKIE_FIELD},
        required=("token",),
    ),
    responses=oauth_responses(400, 401, 403, _200=answer("Revoked, or nothing to revoke.")),
)
async def revoke(request: Request) -> Response:
    """RFC 7009: revoke an access or refresh token; 200 whatever the token was.

    Only the token's own client revokes it (:mod:`keyturn.tokens.revoke`):
    another client's token is left alone, still with 200, and a confidential
    client's token without that client's credentials is 401 ``invalid_client``.
    A wrong ``token_type_hint`` is ignored (the token is still found); an unknown
    hint is treated as no hint. With ``refresh_cookie=true`` (SPA mode) the answer
    also clears the refresh cookie, and an access token given as ``token`` ends
    its refresh family as well, so no live family is left without its cookie.
    """
    cleared = False
    try:
        form = await read_form(request)
        cleared = wants_refresh_cookie(request, form)
        client_id = await authenticate_client(request, form)
        value = required(form, "token")
        hint = form.get("token_type_hint")
        keyturn: Keyturn = get_keyturn(request)
        await keyturn.token_revoker.revoke(
            value,
            hint if hint in TOKEN_TYPE_HINTS else None,
            client_id=client_id,
            end_family=cleared,
        )
    except KeyturnError as exc:
        if exc.code not in ("invalid_token", "invalid_grant", "not_authenticated"):
            return oauth_error_response(exc)
    response = Response(status_code=200, headers=dict(OAUTH_NO_STORE))
    if cleared:
        clear_refresh_cookie(response, path=refresh_cookie_path(request.scope, "/oauth/revoke"))
    return response


@router.post(
    "/introspect",
    openapi_extra=form_request(
        {"token": {}, "token_type_hint": {}, **_CLIENT_FIELDS}, required=("token",)
    ),
    responses=oauth_responses(
        400, 401, _200=answer("The token's state (RFC 7662).", INTROSPECTION)
    ),
)
async def introspect(request: Request) -> Response:
    """RFC 7662: ``{"active": true, ...}`` or exactly ``{"active": false}``, for
    confidential clients authenticated with HTTP Basic."""
    try:
        form = await read_form(request)
        await authenticate_client(request, form, confidential=True)
        value = required(form, "token")
        result = await get_keyturn(request).introspector.introspect(value)
    except KeyturnError as exc:
        return oauth_error_response(exc)
    return JSONResponse(result, headers=dict(OAUTH_NO_STORE))


__all__ = ["OAUTH_PATHS", "router"]
