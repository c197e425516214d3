"""The OAuth 2.0 style endpoints (SPEC "OAuth 2.0 style endpoints"): ``/oauth/*``.

- ``POST /oauth/token``: the ``password`` and ``refresh_token`` grants (RFC 6749
  sections 4.3 and 6);
- ``POST /oauth/revoke``: token revocation (RFC 7009);
- ``POST /oauth/introspect``: token introspection for confidential clients
  (RFC 7662).

Bodies are ``application/x-www-form-urlencoded`` and only that; a parameter sent
twice is ``invalid_request`` (RFC 6749 section 3.2), an empty one counts as absent.
Errors are RFC 6749 bodies ``{"error", "error_description"}``, rendered by
:func:`keyturn.web.errors.oauth_error_response`; every answer carries
``Cache-Control: no-store`` and ``Pragma: no-cache``.

Clients authenticate with HTTP Basic (``client_secret_basic``, the
``application/x-www-form-urlencoded`` encoding of RFC 6749 section 2.3.1) or,
where allowed, ``client_secret`` in the body; public clients just name
themselves with ``client_id``, and first-party callers may send no client at
all. None of these endpoints uses the session cookie, so the session CSRF check
does not apply to them (:data:`OAUTH_PATHS`).
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
from keyturn.web.dependencies import client_ip, get_keyturn, user_agent
from keyturn.web.errors import OAUTH_NO_STORE, oauth_error_response

if TYPE_CHECKING:
    from keyturn.runtime import Keyturn

router = APIRouter(prefix="/oauth", tags=["oauth"])

#: The endpoints that authenticate with client credentials or a token in the body,
#: never with the session cookie: exempt from the session CSRF check.
OAUTH_PATHS: tuple[str, ...] = ("/oauth/token", "/oauth/revoke", "/oauth/introspect")

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
TOKEN_TYPE_HINTS = frozenset({"access_token", "refresh_token"})

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
    }
)


# --- input ----------------------------------------------------------------------------


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded body as a dict, strictly: one value per name, empty values
    dropped (RFC 6749 section 3.1: "treated as if they were omitted").

    Raises:
        InvalidRequest: another content type, invalid UTF-8, too many fields, or a
            repeated parameter.
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
        if name in seen:
            shown = f"'{name}'" if name in _KNOWN_PARAMETERS else "A parameter"
            raise InvalidRequest(f"Parameter {shown} is repeated.")
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


# --- endpoints ------------------------------------------------------------------------


@router.post("/token")
async def token(request: Request) -> Response:
    """The token endpoint: ``grant_type=password`` and ``grant_type=refresh_token``."""
    try:
        form = await read_form(request)
        grant_type = required(form, "grant_type")
        if grant_type not in ("password", "refresh_token"):
            raise UnsupportedGrantType()
        client_id = await authenticate_client(request, form)
        # Sign with the newest key: a `keyturn key rotate` elsewhere shows up within
        # the staleness bound (one clock read when nothing is due).
        await get_keyturn(request).keys.reload_if_stale()
        if grant_type == "password":
            return await _password_grant(request, form, client_id)
        keyturn: Keyturn = get_keyturn(request)
        issued = await keyturn.tokens.refresh_grant(
            required(form, "refresh_token"),
            client_id=client_id,
            ip=client_ip(request),
            user_agent=user_agent(request),
        )
        return _token_json(issued)
    except KeyturnError as exc:
        return oauth_error_response(exc)


async def _password_grant(
    request: Request, form: dict[str, str], client_id: str | None
) -> Response:
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
    return _token_json(issued)


@router.post("/revoke")
async def revoke(request: Request) -> Response:
    """RFC 7009: revoke an access or refresh token; 200 whatever the token was.

    A wrong ``token_type_hint`` is ignored (the token is still found); an unknown
    hint is treated as no hint.
    """
    try:
        form = await read_form(request)
        await authenticate_client(request, form)
        value = required(form, "token")
        hint = form.get("token_type_hint")
        await get_keyturn(request).tokens.revoke(value, hint if hint in TOKEN_TYPE_HINTS else None)
    except KeyturnError as exc:
        if exc.code in ("invalid_token", "invalid_grant", "not_authenticated"):
            return Response(status_code=200, headers=dict(OAUTH_NO_STORE))
        return oauth_error_response(exc)
    return Response(status_code=200, headers=dict(OAUTH_NO_STORE))


@router.post("/introspect")
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


__all__ = ["OAUTH_PATHS", "authenticate_client", "basic_credentials", "read_form", "router"]
