"""The middleware that resolves the caller once per request and enforces CSRF
(SEC-25..31).

:class:`AuthnMiddleware` is pure ASGI. For every HTTP request and WebSocket
handshake it resolves the caller (:class:`~keyturn.web.authn.resolver.CredentialResolver`)
into the scope keys of :mod:`keyturn.web.authn.scope`, puts the
:class:`~keyturn.runtime.Keyturn` itself there (so routes find it under any
prefix and in any host app, ``get_keyturn``) with the mount prefix and the
installation's metrics, then applies the CSRF gate (:mod:`keyturn.web.authn.csrf`)
to every cookie-authenticated unsafe request, host-app routes included.

The sign-in and registration endpoints are exempt (``csrf_exempt_paths``): they
create a session rather than use one, and carry their own login-CSRF defence
(pre-session token or JSON content type, plus
:func:`~keyturn.web.authn.origins.check_same_origin`).

A cookie-authenticated WebSocket handshake must come from this site
(:func:`~keyturn.web.authn.origins.check_websocket_origin`). A refused handshake
gets keyturn's JSON error as an HTTP denial response where the server supports
it (403 ``csrf_failed``), else ``websocket.close`` with code 1008 (policy
violation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyturn.csrf import allowed_origins
from keyturn.errors import CsrfFailed, InvalidRequest, KeyturnError, StoreUnavailable
from keyturn.web.authn.csrf import Disconnected, check_csrf, needs_csrf
from keyturn.web.authn.origins import check_websocket_origin
from keyturn.web.authn.resolver import BearerResolver, CredentialResolver
from keyturn.web.authn.scope import (
    DPOP_NONCE_KEY,
    KEYTURN_KEY,
    METRICS_KEY,
    PREFIX_KEY,
    SESSION_SCOPE_KEY,
)
from keyturn.web.errors import error_response
from keyturn.web.routes.whoami import WHOAMI_PATH, send_whoami

if TYPE_CHECKING:
    from keyturn.runtime import Keyturn
    from keyturn.web.metrics import Metrics

__all__ = ["LOGIN_PATHS", "AuthnMiddleware", "deny_websocket"]

#: Paths that create a session and guard against login CSRF themselves.
LOGIN_PATHS: tuple[str, ...] = (
    "/login",
    "/register",
    "/auth/login",
    "/auth/register",
    # mfa (wave 2): the second step and passkey sign-in (no session yet; each
    # checks the origin, and the pages their login-CSRF token, themselves)
    "/login/mfa",
    "/auth/login/mfa",
    "/auth/login/mfa/options",
    "/auth/webauthn/login/options",
    "/auth/webauthn/login",
)

#: ``websocket.close`` codes for a refused handshake (RFC 6455 section 7.4.1).
POLICY_VIOLATION: Final = 1008
INTERNAL_ERROR: Final = 1011


async def deny_websocket(scope: Scope, receive: Receive, send: Send, error: KeyturnError) -> None:
    """Refuse a WebSocket handshake: keyturn's JSON error as an HTTP denial
    response when the server supports it (the ``websocket.http.response``
    extension), else ``websocket.close`` with 1008 (1011 for a store outage)."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        await error_response(error)(scope, receive, send)
        return
    code = INTERNAL_ERROR if isinstance(error, StoreUnavailable) else POLICY_VIOLATION
    await send({"type": "websocket.close", "code": code})


def _with_dpop_nonce(send: Send, nonce: str) -> Send:
    """``send`` adding ``DPoP-Nonce: <nonce>`` to the response (RFC 9449 section
    8.2: a proof carried the previous window's nonce; the client moves on to this one)."""

    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [*message.get("headers", ()), (b"dpop-nonce", nonce.encode("latin-1"))]
            message = {**message, "headers": headers}
        await send(message)

    return sender


class AuthnMiddleware:
    """Resolve the caller and enforce CSRF on cookie-authenticated unsafe requests.

    Args:
        app: the wrapped ASGI app.
        keyturn: the instance that checks credentials (and its settings: the
            origins allowed besides the request's own).
        bearer: resolves bearer tokens; None means
            :func:`~keyturn.web.authn.resolver.token_authenticator`.
        csrf_exempt_paths: exact paths whose unsafe requests skip the session
            CSRF check because they defend against login CSRF themselves.
        prefix: where keyturn's routes are mounted, put on the scope for them.
        metrics: the installation's metrics (sign-in counters), put on the scope.
        whoami_route: keyturn's ``GET /auth/whoami`` route when it is served
            under ``prefix``: a signed-in ``GET`` of it is then answered here,
            once the caller is resolved (:mod:`keyturn.web.routes.whoami`).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        keyturn: Keyturn,
        bearer: BearerResolver | None = None,
        csrf_exempt_paths: Sequence[str] = LOGIN_PATHS,
        prefix: str = "",
        metrics: Metrics | None = None,
        whoami_route: object | None = None,
    ) -> None:
        self.app = app
        self.keyturn = keyturn
        self.prefix = prefix
        self.metrics = metrics
        self.resolver = CredentialResolver(keyturn, bearer=bearer)
        self.csrf_exempt_paths = frozenset(csrf_exempt_paths)
        self.allowed_origins = allowed_origins(keyturn.settings)
        self.whoami_route = whoami_route
        self.whoami_path = prefix + WHOAMI_PATH if whoami_route is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await self._websocket(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        scope[KEYTURN_KEY] = self.keyturn
        scope[PREFIX_KEY] = self.prefix
        if self.metrics is not None:
            scope[METRICS_KEY] = self.metrics
        try:
            await self.resolver.resolve(scope)
            if needs_csrf(scope, self.csrf_exempt_paths):
                receive = await check_csrf(
                    scope, receive, scope[SESSION_SCOPE_KEY], self.allowed_origins
                )
        except (CsrfFailed, InvalidRequest, StoreUnavailable) as exc:
            await error_response(exc)(scope, receive, send)
            return
        except Disconnected:
            return  # the client went away while we read its body
        nonce = scope.get(DPOP_NONCE_KEY)
        if nonce is not None:
            send = _with_dpop_nonce(send, nonce)
        if (
            scope["path"] == self.whoami_path
            and scope["method"] == "GET"
            and not scope.get("root_path")
            and await send_whoami(scope, send, self.whoami_route)
        ):
            return
        await self.app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket handshake: the caller resolved as for HTTP, and a
        cookie-authenticated one refused unless it comes from this site."""
        scope[KEYTURN_KEY] = self.keyturn
        scope[PREFIX_KEY] = self.prefix
        if self.metrics is not None:
            scope[METRICS_KEY] = self.metrics
        try:
            await self.resolver.resolve(scope)
            if scope[SESSION_SCOPE_KEY] is not None:
                check_websocket_origin(scope, self.allowed_origins)
        except (CsrfFailed, InvalidRequest, StoreUnavailable) as exc:
            await deny_websocket(scope, receive, send, exc)
            return
        await self.app(scope, receive, send)
