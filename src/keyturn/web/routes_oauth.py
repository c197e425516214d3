"""The OAuth 2.0 style endpoints (SPEC "OAuth 2.0 style endpoints"): ``/oauth/*``.

- ``POST /oauth/token``: the ``password`` and ``refresh_token`` grants (RFC 6749
  sections 4.3 and 6);
- ``POST /oauth/revoke``: token revocation (RFC 7009);
- ``POST /oauth/introspect``: token introspection for confidential clients
  (RFC 7662).

Bodies are ``application/x-www-form-urlencoded`` and only that; a parameter sent
twice is ``invalid_request`` (RFC 6749 section 3.2), an empty one counts as absent,
and one keyturn does not know is ignored, even repeated (section 3.1).
Errors are RFC 6749 bodies ``{"error", "error_description"}``, rendered by
:func:`keyturn.web.errors.oauth_error_response`; every answer carries
``Cache-Control: no-store`` and ``Pragma: no-cache``.

Clients authenticate with HTTP Basic (``client_secret_basic``, the
``application/x-www-form-urlencoded`` encoding of RFC 6749 section 2.3.1) or,
where allowed, ``client_secret`` in the body; public clients just name
themselves with ``client_id``, and first-party callers may send no client at
all. None of these endpoints uses the session cookie, so the session CSRF check
does not apply to them (:data:`OAUTH_PATHS`).

SPA refresh-cookie mode (``--refresh-cookie``, off by default): a token request
with ``refresh_cookie=true`` gets its refresh token as the ``HttpOnly; Secure;
SameSite=Strict`` cookie ``__Secure-keyturn_refresh`` (``Path=<prefix>/oauth/token``)
instead of in the body, which carries ``refresh_csrf`` (the token's double-submit
proof) in its place. A ``refresh_token`` grant without ``refresh_token`` in the
body then uses the cookie, and must pass :func:`~keyturn.web.authn.check_same_origin`
and send ``X-CSRF-Token: <refresh_csrf>``, or gets 403 ``csrf_failed``; its answer
rotates the cookie. A refused cookie (``invalid_grant``) is cleared. ``/oauth/revoke``
with ``refresh_cookie=true`` clears the cookie too, and, given an access token,
also ends its refresh family (the one the cookie held): the cookie itself is never
sent there, its ``Path`` is the token endpoint. Every request with
``refresh_cookie=true`` must pass :func:`~keyturn.web.authn.check_same_origin` as
well, or gets 403 ``csrf_failed`` and no cookie: another site must not plant its own
refresh token in the browser, nor clear the user's (issue #10 item 5).
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
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
from keyturn.web.authn import allowed_origins, check_same_origin
from keyturn.web.cookies import (
    REFRESH_COOKIE,
    TOKEN_ENDPOINT,
    check_refresh_csrf,
    clear_refresh_cookie,
    read_cookie,
    refresh_cookie_path,
    refresh_csrf_token,
    set_refresh_cookie,
)
from keyturn.web.dependencies import client_ip, get_keyturn, user_agent
from keyturn.web.errors import OAUTH_NO_STORE, oauth_error_response
from keyturn.web.openapi_docs import (
    ACCESS_TOKEN,
    INTROSPECTION,
    REFRESH_COOKIE_FIELD,  # the form field asking for the refresh token in a cookie
    answer,
    form_request,
    oauth_responses,
)

if TYPE_CHECKING:
    from keyturn.grants import TokenResponse
    from keyturn.runtime import Keyturn

router = APIRouter(prefix="/oauth", tags=["oauth"])

#: The endpoints that authenticate with client credentials or a token in the body,
#: never with the session cookie: exempt from the session CSRF check.
OAUTH_PATHS: tuple[str, ...] = ("/oauth/token", "/oauth/revoke", "/oauth/introspect")

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
TOKEN_TYPE_HINTS = frozenset({"access_token", "refresh_token"})

#: The header carrying the refresh cookie's double-submit proof.
REFRESH_CSRF_HEADER = "x-csrf-token"

#: No request of ours needs more parameters than this; more is malformed.
_MAX_FIELDS = 32
#: Parameter names that may be echoed in an error message (never caller input).
_KNOWN_PARAMETERS = frozenset(
    {
        "grant_type",
        "username",
        "password",
        "scope",
        "client_id",
        "client_secret",
        "refresh_token",
        "token",
        "token_type_hint",
        REFRESH_COOKIE_FIELD,
    }
)


# --- input ----------------------------------------------------------------------------


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded body as a dict, strictly: one value per name, empty values
    dropped (RFC 6749 section 3.1: "treated as if they were omitted"), and
    parameters keyturn does not know dropped too, repeated or not (section 3.1:
    "MUST ignore unrecognized request parameters").

    Raises:
        InvalidRequest: another content type, invalid UTF-8, too many fields, or a
            repeated known parameter.
    """
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != FORM_MEDIA_TYPE:
        raise InvalidRequest(f"The request body must be {FORM_MEDIA_TYPE}.")
    body = await request.body()
    try:
        pairs = urllib.parse.parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            max_num_fields=_MAX_FIELDS,
            errors="strict",
        )
    except ValueError:  # invalid UTF-8 (raw or percent-encoded), too many fields
        raise InvalidRequest("The request body is not a valid form.") from None
    form: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in pairs:
        if name not in _KNOWN_PARAMETERS:
            continue
        if name in seen:
            raise InvalidRequest(f"Parameter '{name}' is repeated.")
        seen.add(name)
        if value:
            form[name] = value
    return form


def required(form: dict[str, str], name: str) -> str:
    """``form[name]``.

    Raises:
        InvalidRequest: the parameter is missing or empty.
    """
    value = form.get(name)
    if value is None:
        raise InvalidRequest(f"Parameter '{name}' is required.")
    return value


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """The client id and secret of an ``Authorization: Basic`` header, else None.

    Both halves are form-urlencoded before base64 (RFC 6749 section 2.3.1), so they
    are decoded after the split.

    Raises:
        InvalidClient: a Basic header that is not well-formed, or sent twice.
    """
    values = request.headers.getlist("authorization")
    basic = [v for v in values if v.strip().lower().startswith("basic ")]
    if not basic:
        return None
    if len(values) != 1:
        raise InvalidClient()
    encoded = basic[0].strip()[len("basic ") :].strip()
    try:
        decoded = base64.b64decode(encoded.encode("ascii"), validate=True).decode("utf-8")
    except (UnicodeError, binascii.Error, ValueError):
        raise InvalidClient() from None
    client_id, colon, secret = decoded.partition(":")
    client_id, secret = urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(secret)
    if not colon or not client_id or not secret:
        raise InvalidClient()
    return client_id, secret


async def authenticate_client(
    request: Request, form: dict[str, str], *, confidential: bool = False
) -> str | None:
    """The id of the calling client, authenticated as far as it can be.

    HTTP Basic or ``client_secret`` in the body (never both) authenticate a
    confidential client; a bare ``client_id`` names a public one. With
    ``confidential=True`` only a confidential client authenticated with HTTP
    Basic passes (introspection).

    Returns:
        The client id, or None when the caller named no client.

    Raises:
        InvalidClient: unknown client, wrong or missing secret, two methods at once,
            or a body ``client_id`` that contradicts the Basic one.
    """
    keyturn: Keyturn = get_keyturn(request)
    basic = basic_credentials(request)
    body_id, body_secret = form.get("client_id"), form.get("client_secret")
    if basic is not None:
        if body_secret is not None or (body_id is not None and body_id != basic[0]):
            raise InvalidClient()
        client_id, secret = basic
    elif body_secret is not None:
        if body_id is None or confidential:
            raise InvalidClient()
        client_id, secret = body_id, body_secret
    else:
        if confidential:
            raise InvalidClient()
        if body_id is None:
            return None
        await keyturn.clients.authenticate(body_id, None)
        return body_id
    if confidential:
        await keyturn.clients.authenticate_confidential(client_id, secret)
    else:
        await keyturn.clients.authenticate(client_id, secret)
    return client_id


def _token_json(response: Any) -> JSONResponse:
    return JSONResponse(response.to_dict(), headers=dict(OAUTH_NO_STORE))


# --- the SPA refresh cookie -------------------------------------------------------------


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
    proofs = request.headers.getlist(REFRESH_CSRF_HEADER)
    check_refresh_csrf(value, proofs[0] if len(proofs) == 1 else None)
    return value


def _cookie_answer(request: Request, issued: TokenResponse) -> JSONResponse:
    """The token answer with the refresh token moved into the cookie; the body
    carries ``refresh_csrf`` instead."""
    refresh_token = issued.refresh_token
    if refresh_token is None:  # both grants issue one; nothing to move otherwise
        return _token_json(issued)
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


# --- endpoints ------------------------------------------------------------------------

_CLIENT_FIELDS: dict[str, dict[str, Any]] = {"client_id": {}, "client_secret": {}}
_COOKIE_FIELD = {REFRESH_COOKIE_FIELD: {"enum": ["true", "false"]}}


@router.post(
    "/token",
    openapi_extra=form_request(
        {
            "grant_type": {"enum": ["password", "refresh_token"]},
            "username": {},
            "password": {},
            "scope": {},
            "refresh_token": {},
            **_CLIENT_FIELDS,
            **_COOKIE_FIELD,
        },
        required=("grant_type",),
    ),
    responses=oauth_responses(400, 401, 403, 429, _200=answer("Tokens.", ACCESS_TOKEN)),
)
async def token(request: Request) -> Response:
    """The token endpoint: ``grant_type=password`` and ``grant_type=refresh_token``;
    ``refresh_cookie=true`` moves the refresh token into the SPA cookie."""
    from_cookie = False
    try:
        form = await read_form(request)
        grant_type = required(form, "grant_type")
        if grant_type not in ("password", "refresh_token"):
            raise UnsupportedGrantType()
        to_cookie = wants_refresh_cookie(request, form)
        presented = form.get("refresh_token")
        if grant_type == "refresh_token" and presented is None:
            presented = cookie_refresh_token(request)
            from_cookie = presented is not None
        client_id = await authenticate_client(request, form)
        # Sign with the newest key: a `keyturn key rotate` elsewhere shows up within
        # the staleness bound (one clock read when nothing is due).
        await get_keyturn(request).keys.reload_if_stale()
        if grant_type == "password":
            issued = await _password_grant(request, form, client_id)
        else:
            keyturn: Keyturn = get_keyturn(request)
            issued = await keyturn.tokens.refresh_grant(
                presented if presented is not None else required(form, "refresh_token"),
                client_id=client_id,
                ip=client_ip(request),
                user_agent=user_agent(request),
            )
        # A token that came from the cookie goes back into it, never into the body.
        if to_cookie or from_cookie:
            return _cookie_answer(request, issued)
        return _token_json(issued)
    except KeyturnError as exc:
        response = oauth_error_response(exc)
        if from_cookie and exc.code == "invalid_grant":  # dead: stop sending it
            clear_refresh_cookie(response, path=refresh_cookie_path(request.scope, TOKEN_ENDPOINT))
        return response


async def _password_grant(
    request: Request, form: dict[str, str], client_id: str | None
) -> TokenResponse:
    """The resource-owner password grant, throttled and counted like ``/auth/login``."""
    username, password = required(form, "username"), required(form, "password")
    keyturn: Keyturn = get_keyturn(request)
    logins = request.app.state.metrics.logins
    try:
        issued = await keyturn.tokens.password_grant(
            username,
            password,
            scope=form.get("scope", ""),
            client_id=client_id,
            ip=client_ip(request),
            user_agent=user_agent(request),
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

    Only the token's own client revokes it (:mod:`keyturn.revoke_introspect`):
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
        await keyturn.tokens.revoke(
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
        result = await get_keyturn(request).tokens.introspect(value)
    except KeyturnError as exc:
        return oauth_error_response(exc)
    return JSONResponse(result, headers=dict(OAUTH_NO_STORE))


__all__ = [
    "OAUTH_PATHS",
    "REFRESH_COOKIE_FIELD",
    "authenticate_client",
    "basic_credentials",
    "cookie_refresh_token",
    "read_form",
    "router",
    "wants_refresh_cookie",
]
