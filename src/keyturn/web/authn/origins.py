"""The same-origin rule applied to an ASGI scope, for HTTP and WebSocket.

The rule itself is framework-free (:func:`keyturn.csrf.check_origin`); this
module reads the request's ``Origin``, ``Sec-Fetch-Site`` and ``Host`` for it.

A WebSocket handshake is a GET that browsers send cross-site with cookies and
that no CSRF token can accompany, and its connection then reads and writes as
the user (cross-site WebSocket hijacking). So a handshake authenticated by the
session cookie must carry exactly one ``Origin`` that passes
:func:`check_same_origin` (:func:`check_websocket_origin`); browsers always
send one on a handshake (RFC 6455 section 4.1), so a missing ``Origin`` is
refused too, and a non-browser client either sends its origin or, better, a
bearer token, which needs no Origin (a page cannot make a browser attach one).
"""

from __future__ import annotations

from typing import Final

from starlette.types import Scope

from keyturn.csrf import check_origin, normalize_origin
from keyturn.errors import CsrfFailed
from keyturn.web.authn.scope import header

__all__ = ["check_same_origin", "check_websocket_origin", "request_origin"]

#: The origin scheme of a WebSocket scope's ``scheme``.
_WEBSOCKET_SCHEMES: Final = {"ws": "http", "wss": "https"}


def request_origin(scope: Scope) -> str | None:
    """The origin this request was addressed to: its scheme and ``Host``
    (``ws``/``wss`` count as ``http``/``https``, as a browser's ``Origin`` does)."""
    scheme = str(scope.get("scheme", "http"))
    scheme = _WEBSOCKET_SCHEMES.get(scheme, scheme)
    host = header(scope, b"host")
    if host is None:
        server = scope.get("server")
        if not server:
            return None
        host = f"{server[0]}:{server[1]}"
    return normalize_origin(f"{scheme}://{host}")


def check_same_origin(scope: Scope, allowed: frozenset[str]) -> None:
    """Refuse a request a browser sent on behalf of another site: the
    framework-free rule (:func:`keyturn.csrf.check_origin`) over this scope's
    ``Origin`` and ``Sec-Fetch-Site`` headers.

    Raises:
        CsrfFailed: the request is cross-site.
    """
    headers = [(k, v) for k, v in scope.get("headers", ()) if k in (b"origin", b"sec-fetch-site")]
    check_origin(
        [v.decode("latin-1") for k, v in headers if k == b"origin"],
        [v.decode("latin-1").strip().lower() for k, v in headers if k != b"origin"],
        lambda: request_origin(scope),
        allowed,
    )


def check_websocket_origin(scope: Scope, allowed: frozenset[str]) -> None:
    """Refuse a cookie-authenticated WebSocket handshake that a browser did not
    send from this site: it must carry exactly one ``Origin``, and pass
    :func:`check_same_origin`.

    Raises:
        CsrfFailed: no ``Origin``, more than one, or a cross-site one.
    """
    if header(scope, b"origin") is None:  # absent or sent twice
        raise CsrfFailed()
    check_same_origin(scope, allowed)
