"""Reading the OAuth endpoints' bodies, and authenticating the calling client.

Bodies are ``application/x-www-form-urlencoded`` and only that; a parameter sent
twice is ``invalid_request`` (RFC 6749 section 3.2), an empty one counts as absent,
and one keyturn does not know is ignored, even repeated (section 3.1).

Clients authenticate with HTTP Basic (``client_secret_basic``, the
``application/x-www-form-urlencoded`` encoding of RFC 6749 section 2.3.1) or,
where allowed, ``client_secret`` in the body; public clients just name
themselves with ``client_id``, and first-party callers may send no client at all.
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from typing import TYPE_CHECKING, Final

from fastapi import Request

from keyturn.errors import InvalidClient, InvalidRequest
from keyturn.web.dependencies import get_keyturn

if TYPE_CHECKING:
    from keyturn.runtime import Keyturn

__all__ = [
    "FORM_MEDIA_TYPE",
    "authenticate_client",
    "basic_credentials",
    "read_form",
    "read_pairs",
    "required",
]

FORM_MEDIA_TYPE: Final = "application/x-www-form-urlencoded"

#: No request of ours needs more parameters than this; more is malformed.
_MAX_FIELDS = 32
#: The parameters keyturn reads; any other is ignored. Only these names are
#: echoed in an error message (never caller input).
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
        "refresh_cookie",
        # the authorization_code grant (wave 2, #12 part B)
        "code",
        "redirect_uri",
        "code_verifier",
    }
)


async def read_pairs(request: Request) -> list[tuple[str, str]]:
    """The urlencoded body as ``(name, value)`` pairs in order, repeats kept
    (``POST /oauth/par`` validates them as an authorization request).

    Raises:
        InvalidRequest: another content type, invalid UTF-8, or too many fields.
    """
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != FORM_MEDIA_TYPE:
        raise InvalidRequest(f"The request body must be {FORM_MEDIA_TYPE}.")
    body = await request.body()
    try:
        return urllib.parse.parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            max_num_fields=_MAX_FIELDS,
            errors="strict",
        )
    except ValueError:  # invalid UTF-8 (raw or percent-encoded), too many fields
        raise InvalidRequest("The request body is not a valid form.") from None


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded body as a dict, strictly: one value per name, empty values
    dropped (RFC 6749 section 3.1: "treated as if they were omitted"), and
    parameters keyturn does not know dropped too, repeated or not (section 3.1:
    "MUST ignore unrecognized request parameters").

    Raises:
        InvalidRequest: another content type, invalid UTF-8, too many fields, or a
            repeated known parameter.
    """
    pairs = await read_pairs(request)
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
