"""The CSRF gate on an ASGI request: when it applies, and where the token is read.

Every cookie-authenticated unsafe request (POST, PUT, PATCH, DELETE, ...) to any
route of the app, host-app routes included, must pass both CSRF halves before
the app sees it (:func:`needs_csrf`), or gets 403 ``csrf_failed``:

- not cross-site (:func:`~keyturn.web.authn.origins.check_same_origin`);
- the session's CSRF token (:func:`keyturn.csrf.check_session_csrf`), in the
  ``X-CSRF-Token`` header or, for ``application/x-www-form-urlencoded`` bodies,
  the ``csrf_token`` field (:func:`check_csrf`). To read the field the body is
  buffered (already capped by :class:`~keyturn.web.middleware.BodyLimitMiddleware`,
  which sits outside) and replayed to the app through a fresh ``receive``, so
  the route parses the same bytes. Multipart forms must use the header. A caller
  that cannot read the body (a Starlette authentication backend) uses
  :func:`check_csrf_header`.

The decisions are :mod:`keyturn.csrf`'s; this module only reads the request.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Container
from typing import Final

from starlette.types import Message, Receive, Scope

from keyturn import csrf
from keyturn.csrf import check_session_csrf
from keyturn.errors import CsrfFailed
from keyturn.web.authn.origins import check_same_origin
from keyturn.web.authn.scope import SAFE_METHODS, SESSION_SCOPE_KEY, header, route_path

__all__ = ["CSRF_HEADER", "Disconnected", "check_csrf", "check_csrf_header", "needs_csrf"]

#: The CSRF token header (:data:`keyturn.csrf.HEADER`) as an ASGI header name.
CSRF_HEADER: Final = csrf.HEADER.lower().encode()


class Disconnected(Exception):
    """The client disconnected before its body arrived."""


def needs_csrf(scope: Scope, exempt: Container[str]) -> bool:
    """Whether a resolved request must pass the CSRF gate: it came with a valid
    session cookie, its method is unsafe, and its path is not ``exempt``."""
    return (
        scope[SESSION_SCOPE_KEY] is not None
        and str(scope.get("method", "GET")).upper() not in SAFE_METHODS
        and route_path(scope) not in exempt
    )


async def check_csrf(
    scope: Scope, receive: Receive, secret: str, allowed: frozenset[str]
) -> Receive:
    """Both CSRF halves, the token from the header or an urlencoded form; returns
    the ``receive`` the app must use.

    Raises:
        CsrfFailed: cross-site, or no/wrong token.
        Disconnected: the client went away while its body was read.
    """
    check_same_origin(scope, allowed)
    submitted = header(scope, CSRF_HEADER)
    if submitted is None and _is_urlencoded(scope):
        body = await _read_body(receive)
        receive = _replay(body, receive)
        submitted = _form_field(body, csrf.FORM_FIELD)
    if not submitted:
        raise CsrfFailed()
    check_session_csrf(secret, submitted)
    return receive


def check_csrf_header(scope: Scope, secret: str, allowed: frozenset[str]) -> None:
    """Both CSRF halves with the token from the ``X-CSRF-Token`` header only.

    Raises:
        CsrfFailed: cross-site, or no/wrong token.
    """
    check_same_origin(scope, allowed)
    submitted = header(scope, CSRF_HEADER)
    if not submitted:
        raise CsrfFailed()
    check_session_csrf(secret, submitted)


def _is_urlencoded(scope: Scope) -> bool:
    content_type = header(scope, b"content-type") or ""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/x-www-form-urlencoded"


async def _read_body(receive: Receive) -> bytes:
    """The whole request body. Size is capped by the body-limit middleware
    outside, whose ``receive`` raises ``PayloadTooLarge`` past the limit."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields ``body`` once, then defers to the real one
    (which reports the disconnect when the client goes away)."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _form_field(body: bytes, name: str) -> str | None:
    """The one value of ``name`` in an urlencoded body; None if absent or ambiguous."""
    try:
        pairs = urllib.parse.parse_qsl(
            body.decode("utf-8", errors="replace"), keep_blank_values=True, max_num_fields=1000
        )
    except ValueError:
        return None
    values = {value for key, value in pairs if key == name}
    return values.pop() if len(values) == 1 else None
