"""Pure ASGI middlewares for the hot path: security headers, body limit, a
last-chance error boundary, and ``X-Forwarded-Proto`` from trusted proxies.

They wrap ``send``/``receive`` instead of using Starlette's
``BaseHTTPMiddleware``, which costs a task and a memory stream per request and
buffers streaming bodies.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyturn.accounts.addresses import trusted_peer
from keyturn.errors import HeadersTooLarge, PayloadTooLarge
from keyturn.web.authn.scope import route_path
from keyturn.web.errors import json_error, unhandled_error_response

#: Applied to every response.
BASE_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    # Not "no-referrer": under it browsers send ``Origin: null`` on same-origin
    # form POSTs, which would defeat the Origin half of the CSRF check. This
    # policy never leaks a path or query string to another origin, nor any
    # referrer over an HTTPS->HTTP downgrade.
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
)

#: Applied to ``text/html`` responses (unless the route set its own CSP).
HTML_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

#: Sent whenever the request arrived over HTTPS: on keyturn's own TLS, or through
#: one of ``--trusted-proxies`` that said so (:class:`ForwardedProtoMiddleware`).
HSTS = "max-age=31536000; includeSubDomains"

#: Responses under these paths hold credentials or per-user state: never cache.
AUTH_PATH_PREFIXES: tuple[str, ...] = (
    "/auth",
    "/oauth",
    "/login",
    "/logout",
    "/register",
    "/account",
    # mail (#14): pages whose URL or form carries an account token
    "/password",
    "/verify-email",
    "/email",
)


def _under(path: str, prefixes: Sequence[str]) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)


class SecurityHeadersMiddleware:
    """Add security headers (SEC-75) to every HTTP response, error pages included.

    Headers a route already set are left alone, so a page may send a stricter
    CSP or its own ``Cache-Control``.
    """

    def __init__(
        self, app: ASGIApp, *, no_store_prefixes: Sequence[str] = AUTH_PATH_PREFIXES
    ) -> None:
        self.app = app
        self.no_store_prefixes = tuple(prefix.rstrip("/") for prefix in no_store_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"
        no_store = _under(route_path(scope), self.no_store_prefixes)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(raw=list(message.get("headers", ())))
                for name, value in BASE_HEADERS:
                    headers.setdefault(name, value)
                if headers.get("content-type", "").lower().startswith("text/html"):
                    headers.setdefault("Content-Security-Policy", HTML_CSP)
                if https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
                if no_store:
                    headers.setdefault("Cache-Control", "no-store")
                message = {**message, "headers": headers.raw}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _too_large_messages(max_bytes: int) -> tuple[Message, Message]:
    response = json_error(
        413,
        PayloadTooLarge.code,
        f"The request body is larger than {max_bytes} bytes.",
        headers={"Connection": "close"},
    )
    start: Message = {
        "type": "http.response.start",
        "status": 413,
        "headers": response.raw_headers,
    }
    return start, {"type": "http.response.body", "body": response.body, "more_body": False}


class BodyLimitMiddleware:
    """Refuse request bodies larger than ``max_bytes`` with 413 ``payload_too_large``,
    and requests with more than ``max_headers`` header fields with 431
    ``headers_too_large``.

    A declared ``Content-Length`` over the limit is refused before the app runs.
    A streamed (chunked) body is counted as it is received: once it passes the
    limit, ``receive`` raises :class:`~keyturn.errors.PayloadTooLarge` and
    whatever response the app then tries to send is replaced by the 413, so at
    most ``max_bytes`` plus one chunk is ever held in memory.

    The header count is one ``len()``; their total size is the server's to
    bound before it buffers them (:mod:`keyturn.web.protocol` under
    ``keyturn serve``).
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, max_headers: int | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_headers = max_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.max_headers is not None and len(scope["headers"]) > self.max_headers:
            for message in _too_many_headers_messages(self.max_headers):
                await send(message)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            for message in _too_large_messages(self.max_bytes):
                await send(message)
            return

        received = 0
        exceeded = False
        started = False
        replaced = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise PayloadTooLarge()
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise PayloadTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started, replaced
            if replaced:
                return  # the app's own answer is swallowed; the 413 was sent
            if message["type"] == "http.response.start":
                started = True
                if exceeded:
                    replaced = True
                    for own in _too_large_messages(self.max_bytes):
                        await send(own)
                    return
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except PayloadTooLarge:
            if started:
                raise
            for message in _too_large_messages(self.max_bytes):
                await send(message)


def _too_many_headers_messages(max_headers: int) -> tuple[Message, Message]:
    response = json_error(
        431,
        HeadersTooLarge.code,
        f"The request has more than {max_headers} header fields.",
        headers={"Connection": "close"},
    )
    start: Message = {
        "type": "http.response.start",
        "status": 431,
        "headers": response.raw_headers,
    }
    return start, {"type": "http.response.body", "body": response.body, "more_body": False}


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server rejects a malformed length itself
    return None


class ErrorBoundaryMiddleware:
    """Answer any exception that escaped the app with the generic 500 JSON body.

    Starlette's own server-error handler re-raises after responding; this one
    logs once and stops, so nothing of the exception reaches the client or the
    ASGI server. If the response had already started, the exception is re-raised
    so the server aborts the connection instead of ending a truncated body.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise
            response = unhandled_error_response(
                exc, method=scope.get("method", ""), path=scope.get("path", "")
            )
            await response(scope, receive, send)


#: The scheme a plain-text scope takes when a trusted proxy received it over TLS.
_SECURE_SCHEMES = {"http": "https", "ws": "wss"}


class ForwardedProtoMiddleware:
    """Treat a request as HTTPS when a trusted proxy says it received it so.

    Behind a TLS-terminating proxy keyturn sees plain HTTP. When the socket peer
    is one of ``trusted_proxies`` and the request carries exactly one
    ``X-Forwarded-Proto: https``, the scope's ``scheme`` becomes ``https``
    (``wss`` for a WebSocket) before anything else reads it. Then HSTS is sent,
    the request's own origin in the CSRF checks is the ``https://`` origin the
    browser used, and URLs built from the request are ``https://``, exactly as
    with keyturn's own TLS. From any other peer the header is ignored: a client
    cannot claim TLS it did not use. A list (``https, http``) or a repeated
    header is ignored too, so the proxy must *set* the header, not append to it.

    Installed outermost, and only when ``--trusted-proxies`` is set: without
    them it costs nothing. With them, a request without the header costs one
    pass over its headers; the peer test is cached.
    """

    def __init__(self, app: ASGIApp, *, trusted_proxies: Sequence[str]) -> None:
        self.app = app
        self.is_trusted = trusted_peer(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        secure = _SECURE_SCHEMES.get(scope.get("scheme", ""))  # None for lifespan, https
        if secure is not None and self._forwarded_https(scope):
            scope["scheme"] = secure
        await self.app(scope, receive, send)

    def _forwarded_https(self, scope: Scope) -> bool:
        values = [value for name, value in scope.get("headers", ()) if name == b"x-forwarded-proto"]
        if len(values) != 1 or values[0].strip().lower() != b"https":
            return False
        client = scope.get("client")
        return client is not None and self.is_trusted(str(client[0]))
