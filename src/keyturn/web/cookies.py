"""The two cookies keyturn sets, and a strict reader for them.

``__Host-keyturn_session`` carries the session secret; it is the *only* place a
session is accepted from (SEC-05). ``__Host-keyturn_csrf`` carries the
pre-session token that protects the sign-in and registration forms against
login CSRF (SEC-30); it is discarded at sign-in.

Both use the ``__Host-`` prefix, so browsers only accept them with ``Secure``,
``Path=/`` and no ``Domain``: a sibling subdomain cannot plant or overwrite
them. ``Secure`` cookies still work on ``http://127.0.0.1`` and
``http://localhost`` in Chromium and Firefox, which treat loopback as a secure
context; anywhere else keyturn must be served over HTTPS.

Cookie values are untrusted input (SEC-06): :func:`read_cookie` returns None for
anything that does not look like a value keyturn could have issued - too long,
odd characters, quoted, or the same name sent twice - so a malformed cookie is
"no credential", never an error.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable

from starlette.responses import Response

SESSION_COOKIE = "__Host-keyturn_session"
PRE_SESSION_COOKIE = "__Host-keyturn_csrf"

#: What keyturn's own values look like: URL-safe base64 and a few separators.
#: Generous on purpose (the session secret format belongs to the core), strict
#: enough to shut out quotes, whitespace, control characters and megabytes.
_VALUE = re.compile(r"[A-Za-z0-9_\-.~]{16,256}")


def read_cookie(headers: Iterable[tuple[bytes, bytes]], name: str) -> str | None:
    """The value of cookie ``name`` in raw ASGI ``headers``, or None.

    None when the cookie is absent, appears more than once (a planted duplicate
    must not win by ordering), or its value is not well-formed.
    """
    found: list[str] = []
    prefix = name + "="
    for header, raw in headers:
        if header != b"cookie":
            continue
        text = raw.decode("latin-1")
        for part in text.split(";"):
            part = part.strip()
            if part.startswith(prefix):
                found.append(part[len(prefix) :])
    if len(found) != 1:
        return None
    value = found[0]
    return value if _VALUE.fullmatch(value) else None


def set_session_cookie(response: Response, secret: str, *, max_age: int | None) -> None:
    """Attach the session cookie; ``max_age=None`` makes it a browser-session cookie."""
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=max_age,
        path="/",
        secure=True,
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response) -> None:
    """Tell the browser to drop the session cookie (``Max-Age=0``)."""
    _clear(response, SESSION_COOKIE, "lax")


def new_pre_session_token() -> str:
    """A fresh 256-bit login-CSRF token."""
    return secrets.token_urlsafe(32)


def set_pre_session_cookie(response: Response, token: str) -> None:
    """Attach the login-CSRF cookie (browser-session, ``SameSite=Strict``)."""
    response.set_cookie(
        PRE_SESSION_COOKIE,
        token,
        path="/",
        secure=True,
        httponly=True,
        samesite="strict",
    )


def clear_pre_session_cookie(response: Response) -> None:
    """Drop the login-CSRF cookie: it has no use once a session exists."""
    _clear(response, PRE_SESSION_COOKIE, "strict")


def _clear(response: Response, name: str, samesite: str) -> None:
    # The attributes must match the original for __Host- cookies to be replaced.
    response.set_cookie(
        name,
        "",
        max_age=0,
        path="/",
        secure=True,
        httponly=True,
        samesite="strict" if samesite == "strict" else "lax",
    )
