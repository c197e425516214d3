"""Pure ASGI middlewares for the hot path: security headers, body limit and a
last-chance error boundary.

They wrap ``send``/``receive`` instead of using Starlette's
``BaseHTTPMiddleware``, which costs a task and a memory stream per request and
buffers streaming bodies.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyturn.errors import PayloadTooLarge
from keyturn.web.authn import route_path
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

#: Sent whenever the request arrived over HTTPS (directly or via a trusted proxy).
HSTS = "max-age=31536000; includeSubDomains"

#: Responses under these paths hold credentials or per-user state: never cache.
AUTH_PATH_PREFIXES: tuple[str, ...] = (
    "/auth",
    "/oauth",
    "/login",
    "/logout",
    "/register",
    "/account",
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
    """Refuse request bodies larger than ``max_bytes`` with 413 ``payload_too_large``.

    A declared ``Content-Length`` over the limit is refused before the app runs.
    A streamed (chunked) body is counted as it is received: once it passes the
    limit, ``receive`` raises :class:`~keyturn.errors.PayloadTooLarge` and
    whatever response the app then tries to send is replaced by the 413, so at
    most ``max_bytes`` plus one chunk is ever held in memory.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
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
