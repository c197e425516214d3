"""CORS for the JSON API, the OAuth endpoints and discovery (SEC-32).

:class:`CorsMiddleware` is pure ASGI. It only looks at requests to keyturn's own
browser-facing endpoints - ``/auth/*``, ``/oauth/*`` and ``/.well-known/*`` below
the app's ``root_path`` and the router ``prefix`` - and leaves every other route
of a host app alone.

- An ``Origin`` is allowed when it equals, byte for byte, one of ``origins`` in
  serialized form (``scheme://host[:port]``, lower case, no default port: what
  browsers send). No wildcards, no suffix matching, never ``null``.
- An allowed origin gets ``Access-Control-Allow-Origin: <origin>`` and
  ``Access-Control-Allow-Credentials: true``; a preflight from it is answered
  ``204`` with the methods, the request headers keyturn reads
  (``Authorization``, ``Content-Type``, ``X-CSRF-Token``, ``DPoP``) and a max-age.
- Any other origin gets no CORS header at all, and its preflight is refused
  (403 ``forbidden``), so the browser never sends the real request.
- The discovery documents (``/.well-known/*``: JWKS and server metadata) are
  public: any other origin may read them, with ``Access-Control-Allow-Origin: *``
  and never with credentials.
- Every answer in scope carries ``Vary: Origin``, since it depends on it.

CORS only decides which *other sites' scripts* may read keyturn's answers. It
protects nothing by itself: cookie-authenticated requests still pass the CSRF
checks of :mod:`keyturn.web.authn` (whose allowed origins include the same
``cors_origins``), and bearer requests need no cookie at all.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyturn import csrf
from keyturn.csrf import normalize_origin
from keyturn.errors import ConfigurationError
from keyturn.web.errors import json_error

__all__ = [
    "ALLOW_HEADERS",
    "ALLOW_METHODS",
    "API_PATHS",
    "EXPOSE_HEADERS",
    "MAX_AGE",
    "PUBLIC_PATHS",
    "CorsMiddleware",
]

#: keyturn's browser-facing endpoints, below any prefix.
API_PATHS: tuple[str, ...] = ("/auth/", "/oauth/", "/.well-known/")
#: Public documents any origin may read (without credentials).
PUBLIC_PATHS: tuple[str, ...] = ("/.well-known/",)

ALLOW_METHODS = "GET, POST, DELETE"
ALLOW_HEADERS = f"Authorization, Content-Type, {csrf.HEADER}, DPoP"
#: Response headers a script may read besides the CORS-safelisted ones.
EXPOSE_HEADERS = f"Retry-After, WWW-Authenticate, {csrf.HEADER}, DPoP-Nonce"
#: Seconds a browser may cache a preflight answer (Chromium caps this at 7200).
MAX_AGE = 600


class CorsMiddleware:
    """Answer CORS preflights and decorate responses, for ``origins`` only.

    Args:
        app: the wrapped ASGI app.
        origins: the allowed origins (``settings.cors_origins``), normalized here.
        prefix: where keyturn's routes are mounted in the app (``install(...,
            prefix=)``); the request's ``root_path`` is allowed for as well.
        paths: path prefixes below ``prefix`` that CORS applies to.
        public_paths: those of ``paths`` that any origin may read, without
            credentials.
        max_age: ``Access-Control-Max-Age`` of preflight answers, in seconds.

    Raises:
        ConfigurationError: an entry of ``origins`` is not an origin (``*``,
            ``null``, a URL with a path...).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        origins: Sequence[str],
        prefix: str = "",
        paths: Sequence[str] = API_PATHS,
        public_paths: Sequence[str] = PUBLIC_PATHS,
        max_age: int = MAX_AGE,
    ) -> None:
        allowed: set[str] = set()
        for origin in origins:
            normalized = normalize_origin(origin)
            if normalized is None:
                raise ConfigurationError(f"CORS origin {origin!r} is not scheme://host[:port]")
            allowed.add(normalized)
        self.app = app
        self.origins = frozenset(allowed)
        self.prefix = prefix.rstrip("/")
        self.paths = tuple(paths)
        self.public_paths = tuple(public_paths)
        self.max_age = max_age

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = self._route(scope)
        if route is None:
            await self.app(scope, receive, send)
            return
        origin = _single_header(scope, b"origin")
        granted = origin if origin is not None and origin in self.origins else None
        if (
            scope.get("method") == "OPTIONS"
            and origin is not None
            and _single_header(scope, b"access-control-request-method") is not None
        ):
            await self._preflight(scope, receive, send, granted)
            return
        public = route.startswith(self.public_paths)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.add_vary_header("Origin")
                if granted is not None:
                    headers["Access-Control-Allow-Origin"] = granted
                    headers["Access-Control-Allow-Credentials"] = "true"
                    headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
                elif public:
                    headers["Access-Control-Allow-Origin"] = "*"
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def _route(self, scope: Scope) -> str | None:
        """The request's path below ``root_path`` and ``prefix`` if CORS applies
        to it, else None."""
        path = str(scope.get("path", ""))
        root_path = str(scope.get("root_path", ""))
        if root_path and path.startswith(root_path + "/"):
            path = path[len(root_path) :]
        if self.prefix:
            if not path.startswith(self.prefix + "/"):
                return None
            path = path[len(self.prefix) :]
        return path if path.startswith(self.paths) else None

    async def _preflight(
        self, scope: Scope, receive: Receive, send: Send, origin: str | None
    ) -> None:
        """204 with the CORS grant for an allowed ``origin``; 403 and no CORS
        header for any other (``origin`` None)."""
        if origin is None:
            refused = json_error(
                403, "forbidden", "This origin may not call this endpoint from a browser."
            )
            refused.headers.add_vary_header("Origin")
            await refused(scope, receive, send)
            return
        headers = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-credentials", b"true"),
            (b"access-control-allow-methods", ALLOW_METHODS.encode()),
            (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
            (b"access-control-max-age", str(self.max_age).encode()),
            (b"vary", b"Origin"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _single_header(scope: Scope, name: bytes) -> str | None:
    """The one value of header ``name``; None if absent or sent more than once."""
    values = [value for key, value in scope.get("headers", ()) if key == name]
    if len(values) != 1:
        return None
    value: bytes = values[0]
    return value.decode("latin-1")
