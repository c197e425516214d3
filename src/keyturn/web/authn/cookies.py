"""The two cookies keyturn sets, and a strict reader for them.

``__Host-keyturn_session`` carries the session secret; it is the *only* place a
session is accepted from (SEC-05). ``__Host-keyturn_csrf`` carries the
pre-session token that protects the sign-in and registration forms against
login CSRF (SEC-30); it is discarded at sign-in.

Both use the ``__Host-`` prefix, so browsers only accept them with ``Secure``,
``Path=/`` and no ``Domain``: a sibling subdomain cannot plant or overwrite
them.

``__Secure-keyturn_refresh`` carries a refresh token in the opt-in SPA mode
(``--refresh-cookie``; see ``docs/guides/browser-clients.md``). It is scoped to
the token endpoint (``Path=<prefix>/oauth/token``), so it cannot be a
``__Host-`` cookie; ``__Secure-`` still makes browsers refuse it without
``Secure``. Because a sibling subdomain *can* plant a ``__Secure-`` cookie for
the parent domain, the refresh cookie is only honoured together with its
double-submit proof (:func:`keyturn.csrf.refresh_csrf_token`), which is bound to the token
value itself. ``Secure`` cookies still work on ``http://127.0.0.1`` and
``http://localhost`` in Chromium and Firefox, which treat loopback as a secure
context; anywhere else keyturn must be served over HTTPS.

Cookie values are untrusted input (SEC-06): :func:`read_cookie` returns None for
anything that does not look like a value keyturn could have issued - too long,
odd characters, quoted, or the same name sent twice - so a malformed cookie is
"no credential", never an error.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from starlette.responses import Response
from starlette.types import Scope

SESSION_COOKIE = "__Host-keyturn_session"
PRE_SESSION_COOKIE = "__Host-keyturn_csrf"
#: Binds an ``mfa_token`` to the browser that passed the password step (#15).
MFA_BINDING_COOKIE = "__Host-keyturn_mfa"
REFRESH_COOKIE = "__Secure-keyturn_refresh"

#: The token endpoint the refresh cookie is scoped to, below any mount prefix.
TOKEN_ENDPOINT = "/oauth/token"  # noqa: S105 (a path, not a secret)

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


def set_mfa_binding_cookie(response: Response, binding: str, *, max_age: int) -> None:
    """Attach the random value an ``mfa_token`` is bound to (``SameSite=Strict``,
    gone when the token is): the second step only works from this browser."""
    response.set_cookie(
        MFA_BINDING_COOKIE,
        binding,
        max_age=max_age,
        path="/",
        secure=True,
        httponly=True,
        samesite="strict",
    )


def clear_mfa_binding_cookie(response: Response) -> None:
    """Drop the ``mfa_token`` binding once the sign-in is finished."""
    _clear(response, MFA_BINDING_COOKIE, "strict")


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


# --- the SPA refresh cookie ---------------------------------------------------------


def refresh_cookie_path(scope: Scope, endpoint: str) -> str:
    """``Path`` of the refresh cookie, seen from a request to ``endpoint``.

    ``endpoint`` is the route the request was addressed to, below any prefix
    (``"/oauth/token"``, ``"/oauth/revoke"``, ``"/auth/logout"``). Whatever the
    request's path has in front of it (an ``include_router`` prefix, a ``Mount``,
    a proxy's ``root_path``) is kept, so the cookie follows keyturn wherever it is
    mounted: ``/oauth/token`` at the root, ``/id/oauth/token`` under ``/id``.
    """
    path = str(scope.get("path", ""))
    root_path = str(scope.get("root_path", ""))
    if root_path and not path.startswith(root_path):
        path = root_path + path  # servers that leave the root path out of ``path``
    prefix = path[: -len(endpoint)] if path.endswith(endpoint) else root_path
    return prefix.rstrip("/") + TOKEN_ENDPOINT


def set_refresh_cookie(response: Response, refresh_token: str, *, path: str, max_age: int) -> None:
    """Attach a refresh token as ``__Secure-keyturn_refresh``: ``HttpOnly``,
    ``Secure``, ``SameSite=Strict``, sent to the token endpoint only."""
    response.set_cookie(
        REFRESH_COOKIE,
        refresh_token,
        max_age=max_age,
        path=path,
        secure=True,
        httponly=True,
        samesite="strict",
    )


def clear_refresh_cookie(response: Response, *, path: str) -> None:
    """Tell the browser to drop the refresh cookie (``Max-Age=0``, same ``Path``)."""
    set_refresh_cookie(response, "", path=path, max_age=0)
