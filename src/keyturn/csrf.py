"""CSRF defences without a framework: the tokens, and the same-origin rule.

A browser attaches cookies to requests another site makes it send, so every
cookie-authenticated unsafe request must prove two things (SEC-25..31):

1. **Not cross-site** (:func:`check_origin`): ``Sec-Fetch-Site: cross-site`` is
   refused, and so is an ``Origin`` that is ``null``, unparsable, or neither the
   request's own origin nor an allowed one (:func:`allowed_origins`). A request
   without either header (a non-browser client) passes this half.
2. **A token only this site can know**, compared in constant time:

   - a session's token (:func:`session_csrf_token`): base64url(HMAC-SHA256(session
     secret, context)). It needs no storage and no shared key, works on every
     instance, and changes whenever the session ID rotates;
   - before there is a session, the login-CSRF token (:func:`new_pre_session_token`):
     256 random bits in a ``SameSite=Strict`` cookie and in the form (SEC-30);
   - beside a refresh token kept in a cookie (SPA mode), its double-submit proof
     (:func:`refresh_csrf_token`), keyed by the token itself.

The token travels in the :data:`HEADER` header (or the :data:`FORM_FIELD` field
of an urlencoded form); :mod:`keyturn.web.authn` reads requests and applies these
rules, this module only decides.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import urllib.parse
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final

from keyturn.errors import CsrfFailed

if TYPE_CHECKING:
    from keyturn.settings import Settings

__all__ = [
    "FORM_FIELD",
    "HEADER",
    "allowed_origins",
    "check_origin",
    "check_pre_session_csrf",
    "check_refresh_csrf",
    "check_session_csrf",
    "new_pre_session_token",
    "normalize_origin",
    "refresh_csrf_token",
    "session_csrf_token",
]

#: The header a cookie caller sends its CSRF token in, and keyturn returns it in.
HEADER: Final = "X-CSRF-Token"
#: The field of an ``application/x-www-form-urlencoded`` form that may carry it.
FORM_FIELD: Final = "csrf_token"

_SESSION_CONTEXT: Final = b"keyturn-csrf-v1"
_REFRESH_CONTEXT: Final = b"keyturn-refresh-csrf-v1"
_DEFAULT_PORTS: Final = {"http": "80", "https": "443"}


def _hmac_token(key: str, context: bytes) -> str:
    digest = hmac.new(key.encode(), context, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


# --- the tokens ------------------------------------------------------------------------


def session_csrf_token(secret: str) -> str:
    """The CSRF token of the session with this secret ID."""
    return _hmac_token(secret, _SESSION_CONTEXT)


def check_session_csrf(secret: str, submitted: object) -> None:
    """Check a submitted token against the session's, in constant time.

    Raises:
        CsrfFailed: the token is missing, empty, not a string, or wrong.
    """
    if not isinstance(submitted, str) or not submitted or not submitted.isascii():
        raise CsrfFailed()
    if not hmac.compare_digest(session_csrf_token(secret), submitted):
        raise CsrfFailed()


def new_pre_session_token() -> str:
    """A fresh 256-bit login-CSRF token (for the pre-session cookie and the form)."""
    return secrets.token_urlsafe(32)


def check_pre_session_csrf(cookie: str | None, submitted: str | None) -> None:
    """The form's login-CSRF token must equal the cookie's (constant time).

    Raises:
        CsrfFailed: either is missing, or they differ.
    """
    if not cookie or not submitted:
        raise CsrfFailed()
    if not hmac.compare_digest(cookie.encode(), submitted.encode("utf-8", "replace")):
        raise CsrfFailed()


def refresh_csrf_token(refresh_token: str) -> str:
    """The double-submit proof of a refresh token: base64url(HMAC-SHA256(token,
    context)), returned as ``refresh_csrf`` beside a cookie-borne refresh token.

    Keyed by the 256-bit token itself, so nothing is stored and no server key is
    needed; it changes on every rotation, and it cannot be computed without the
    token, which the cookie keeps away from scripts.
    """
    return _hmac_token(refresh_token, _REFRESH_CONTEXT)


def check_refresh_csrf(refresh_token: str, submitted: str | None) -> None:
    """Compare a submitted proof with the cookie's, in constant time.

    Raises:
        CsrfFailed: the proof is missing or does not belong to ``refresh_token``.
    """
    if not submitted:
        raise CsrfFailed()
    expected = refresh_csrf_token(refresh_token).encode()
    if not hmac.compare_digest(expected, submitted.encode("latin-1", errors="replace")):
        raise CsrfFailed()


# --- the origin rule -------------------------------------------------------------------


def normalize_origin(value: str) -> str | None:
    """``scheme://host[:port]`` lower-cased, default port dropped; None if not an origin."""
    try:
        parts = urllib.parse.urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is not None and str(port) != _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}:{port}"
    return f"{scheme}://{host}"


def allowed_origins(settings: Settings) -> frozenset[str]:
    """The origins besides the request's own that may send unsafe requests:
    ``cors_origins`` and the configured ``issuer`` (the public URL, which is
    what browsers send as ``Origin`` behind a TLS-terminating proxy)."""
    result = set()
    for origin in (*settings.cors_origins, settings.issuer):
        normalized = normalize_origin(origin) if origin else None
        if normalized:
            result.add(normalized)
    return frozenset(result)


def check_origin(
    origins: Sequence[str],
    fetch_sites: Sequence[str],
    own_origin: Callable[[], str | None],
    allowed: frozenset[str],
) -> None:
    """Refuse a request a browser sent on behalf of another site.

    Args:
        origins: the request's ``Origin`` header values (normally none or one).
        fetch_sites: its ``Sec-Fetch-Site`` values, stripped and lower-cased.
        own_origin: the origin the request was addressed to (asked only when
            an ``Origin`` must be compared with it).
        allowed: other origins that may send unsafe requests.

    Raises:
        CsrfFailed: the request is cross-site.
    """
    if "cross-site" in fetch_sites:
        raise CsrfFailed()
    if not origins:
        return
    if len(origins) > 1:
        raise CsrfFailed()
    origin = normalize_origin(origins[0])  # "null" does not parse: refused
    if origin is None or (origin not in allowed and origin != own_origin()):
        raise CsrfFailed()
