"""Who is calling, resolved once per request, and CSRF enforcement (SEC-25..31).

:class:`AuthnMiddleware` is pure ASGI. For every HTTP request and WebSocket
handshake it stores

- ``scope["keyturn.principal"]``: the :class:`~keyturn.principal.Principal`, or None;
- ``scope["keyturn.session_secret"]``: the session secret when the caller came
  with a valid session cookie (for routes that sign out or rotate), else None;
- ``scope["keyturn.credential"]``: ``"session"``, ``"bearer"`` or None - what
  the request *presented*, valid or not;
- ``scope["keyturn"]``: the :class:`~keyturn.runtime.Keyturn` itself, so routes
  find it under any prefix and in any host app (``get_keyturn``), and
  ``scope["keyturn.prefix"]``: where keyturn's routes are mounted.

Credentials, in order:

1. ``Authorization: Bearer ...`` - resolved by ``bearer=`` (by default
   :func:`token_authenticator`: :meth:`Keyturn.bearer.authenticate
   <keyturn.tokens.bearer.BearerAuthenticator.authenticate>`). Every
   failure is the one :class:`~keyturn.errors.InvalidToken` (401 with
   ``WWW-Authenticate: Bearer error="invalid_token"``); only a store outage is
   reported as such (503). The session cookie is then ignored: a bearer request
   never silently falls back to cookie authentication (SEC-31). The verified
   claims are kept in ``scope["keyturn.token_claims"]``.
2. The ``__Host-keyturn_session`` cookie, and nothing else (SEC-05).

An ``access_token`` in the query string is never accepted (RFC 6750 section 2.3,
SEC-63): alone it is an invalid token, next to an ``Authorization`` header it is
400 ``invalid_request`` (one request, one method). Either way a token there has
leaked (URLs are logged, kept in history, sent as ``Referer``), so one that
verifies is revoked (:meth:`~keyturn.tokens.revoke.TokenRevoker.revoke_exposed`)
before the answer; only requests with ``access_token`` in the query pay for it.

Every cookie-authenticated unsafe request (POST, PUT, PATCH, DELETE, ...) to any
route of the app, host-app routes included, must pass both CSRF halves before
the app sees it, or gets 403 ``csrf_failed``:

- not cross-site: ``Sec-Fetch-Site: cross-site`` is refused, and so is an
  ``Origin`` that is ``null`` or neither this request's own origin nor an
  allowed one (``cors_origins``, and the ``issuer``'s origin);
- the session's CSRF token, in the ``X-CSRF-Token`` header or, for
  ``application/x-www-form-urlencoded`` bodies, the ``csrf_token`` field.
  To read the field the middleware buffers the body (already capped by
  :class:`~keyturn.web.middleware.BodyLimitMiddleware`, which sits outside)
  and replays it to the app through a fresh ``receive``, so the route parses
  the same bytes. Multipart forms must use the header.

The sign-in and registration endpoints are exempt (``csrf_exempt_paths``): they
create a session rather than use one, and carry their own login-CSRF defence
(pre-session token or JSON content type, plus :func:`check_same_origin`).

A WebSocket handshake is a GET that browsers send cross-site with cookies and
that no CSRF token can accompany, and its connection then reads and writes as
the user (cross-site WebSocket hijacking). So a handshake authenticated by the
session cookie must carry exactly one ``Origin`` that passes
:func:`check_same_origin` (:func:`check_websocket_origin`); browsers always
send one on a handshake (RFC 6455 section 4.1), so a missing ``Origin`` is
refused too, and a non-browser client either sends its origin or, better, a
bearer token, which needs no Origin (a page cannot make a browser attach one).
A refused handshake gets keyturn's JSON error as an HTTP denial response where
the server supports it (403 ``csrf_failed``), else ``websocket.close`` with
code 1008 (policy violation).
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyturn import csrf
from keyturn.csrf import allowed_origins, check_origin, check_session_csrf, normalize_origin
from keyturn.errors import (
    CsrfFailed,
    InvalidRequest,
    InvalidToken,
    KeyturnError,
    NotAuthenticated,
    StoreUnavailable,
)
from keyturn.principal import Principal
from keyturn.web.cookies import SESSION_COOKIE, read_cookie
from keyturn.web.errors import error_response

if TYPE_CHECKING:
    from keyturn.runtime import Keyturn
    from keyturn.web.metrics import Metrics

logger = logging.getLogger("keyturn.web")

PRINCIPAL_KEY = "keyturn.principal"
SESSION_SCOPE_KEY = "keyturn.session_secret"
CREDENTIAL_KEY = "keyturn.credential"
#: The error that made a presented credential fail, for a precise 401 later.
AUTH_ERROR_KEY = "keyturn.auth_error"
#: The :class:`~keyturn.tokens.access.AccessTokenClaims` of a bearer-authenticated request.
TOKEN_CLAIMS_KEY = "keyturn.token_claims"  # noqa: S105 (a scope key, not a secret)
#: The :class:`~keyturn.runtime.Keyturn` serving the request.
KEYTURN_KEY = "keyturn"
#: The path prefix keyturn's routes are mounted under (``""`` at the root).
PREFIX_KEY = "keyturn.prefix"
#: The :class:`~keyturn.web.metrics.Metrics` of the installation (or absent).
METRICS_KEY = "keyturn.metrics"

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})

#: Paths that create a session and guard against login CSRF themselves.
LOGIN_PATHS: tuple[str, ...] = ("/login", "/register", "/auth/login", "/auth/register")

#: The CSRF token header (:data:`keyturn.csrf.HEADER`) as an ASGI header name.
CSRF_HEADER = csrf.HEADER.lower().encode()

#: Resolves a bearer token to a principal or raises ``InvalidToken`` (issue #4).
BearerAuthenticator = Callable[[str, Scope], Awaitable[Principal]]


def token_authenticator(keyturn: Keyturn) -> BearerAuthenticator:
    """The default bearer resolver: ``keyturn.bearer.authenticate`` (signature,
    claims and revocation, in process), keeping the claims in the scope."""

    async def authenticate(token: str, scope: Scope) -> Principal:
        claims, principal = await keyturn.bearer.authenticate(token)
        scope[TOKEN_CLAIMS_KEY] = claims
        return principal

    return authenticate


#: At most this many distinct ``access_token`` values of one query are revoked.
MAX_EXPOSED_TOKENS = 4


def query_tokens(scope: Scope) -> list[str] | None:
    """The ``access_token`` values of the query string; None when it has none."""
    query: bytes = scope.get("query_string", b"")
    if b"access_token" not in query:  # the cheap test first: the hot path has none
        return None
    names = urllib.parse.parse_qs(query.decode("latin-1"), keep_blank_values=True)
    return names.get("access_token")


def query_token(scope: Scope) -> bool:
    """Whether the query string carries an ``access_token`` parameter."""
    return query_tokens(scope) is not None


#: The origin scheme of a WebSocket scope's ``scheme``.
_WEBSOCKET_SCHEMES = {"ws": "http", "wss": "https"}
#: ``websocket.close`` codes for a refused handshake (RFC 6455 section 7.4.1).
POLICY_VIOLATION = 1008
INTERNAL_ERROR = 1011


def _header(scope: Scope, name: bytes) -> str | None:
    """The single value of header ``name``; None if absent or sent more than once."""
    values = [value for key, value in scope.get("headers", ()) if key == name]
    if len(values) != 1:
        return None
    value: bytes = values[0]
    return value.decode("latin-1")


def request_origin(scope: Scope) -> str | None:
    """The origin this request was addressed to: its scheme and ``Host``
    (``ws``/``wss`` count as ``http``/``https``, as a browser's ``Origin`` does)."""
    scheme = str(scope.get("scheme", "http"))
    scheme = _WEBSOCKET_SCHEMES.get(scheme, scheme)
    host = _header(scope, b"host")
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
    if _header(scope, b"origin") is None:  # absent or sent twice
        raise CsrfFailed()
    check_same_origin(scope, allowed)


async def deny_websocket(scope: Scope, receive: Receive, send: Send, error: KeyturnError) -> None:
    """Refuse a WebSocket handshake: keyturn's JSON error as an HTTP denial
    response when the server supports it (the ``websocket.http.response``
    extension), else ``websocket.close`` with 1008 (1011 for a store outage)."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        await error_response(error)(scope, receive, send)
        return
    code = INTERNAL_ERROR if isinstance(error, StoreUnavailable) else POLICY_VIOLATION
    await send({"type": "websocket.close", "code": code})


def route_path(scope: Scope) -> str:
    """The request path below the app's mount point: ``path`` without
    ``root_path`` (a ``Mount``, a proxy prefix), the path routes match on."""
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


def bearer_token(scope: Scope) -> str | None:
    """The credentials of an ``Authorization: Bearer`` header ("" if empty), else None."""
    value = _header(scope, b"authorization")
    if value is None:
        raw = [v for k, v in scope.get("headers", ()) if k == b"authorization"]
        return "" if raw else None  # several Authorization headers: unusable
    scheme, _, credentials = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credentials.strip()


class AuthnMiddleware:
    """Resolve the caller and enforce CSRF on cookie-authenticated unsafe requests.

    Args:
        app: the wrapped ASGI app.
        keyturn: supplies ``sessions`` (validation), ``bearer``,
            ``token_revoker`` (tokens sent in a URL) and settings.
        bearer: resolves bearer tokens; None means :func:`token_authenticator`.
        csrf_exempt_paths: exact paths whose unsafe requests skip the session
            CSRF check because they defend against login CSRF themselves.
        prefix: where keyturn's routes are mounted, put on the scope for them.
        metrics: the installation's metrics (sign-in counters), put on the scope.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        keyturn: Keyturn,
        bearer: BearerAuthenticator | None = None,
        csrf_exempt_paths: Sequence[str] = LOGIN_PATHS,
        prefix: str = "",
        metrics: Metrics | None = None,
    ) -> None:
        self.app = app
        self.keyturn = keyturn
        self.prefix = prefix
        self.metrics = metrics
        self.bearer = bearer if bearer is not None else token_authenticator(keyturn)
        self.csrf_exempt_paths = frozenset(csrf_exempt_paths)
        self.allowed_origins = allowed_origins(keyturn.settings)

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
            await self.resolve(scope)
            if (
                scope[SESSION_SCOPE_KEY] is not None
                and str(scope.get("method", "")).upper() not in SAFE_METHODS
                and route_path(scope) not in self.csrf_exempt_paths
            ):
                receive = await self._check_csrf(scope, receive, scope[SESSION_SCOPE_KEY])
        except (CsrfFailed, InvalidRequest, StoreUnavailable) as exc:
            await error_response(exc)(scope, receive, send)
            return
        except _Disconnected:
            return  # the client went away while we read its body
        await self.app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket handshake: the caller resolved as for HTTP, and a
        cookie-authenticated one refused unless it comes from this site."""
        scope[KEYTURN_KEY] = self.keyturn
        scope[PREFIX_KEY] = self.prefix
        if self.metrics is not None:
            scope[METRICS_KEY] = self.metrics
        try:
            await self.resolve(scope)
            self.check_websocket(scope)
        except (CsrfFailed, InvalidRequest, StoreUnavailable) as exc:
            await deny_websocket(scope, receive, send, exc)
            return
        await self.app(scope, receive, send)

    def check_websocket(self, scope: Scope) -> None:
        """For a resolved WebSocket handshake that came with a valid session
        cookie, :func:`check_websocket_origin`; nothing for other callers.

        Raises:
            CsrfFailed: cookie-authenticated and not from this site.
        """
        if scope[SESSION_SCOPE_KEY] is not None:
            check_websocket_origin(scope, self.allowed_origins)

    async def resolve(self, scope: Scope) -> None:
        """Resolve the caller of ``scope`` into the scope keys (see the module doc),
        without the CSRF check.

        Raises:
            InvalidRequest: an access token both in the query and in a header.
            StoreUnavailable: a store the check needs is down.
        """
        scope[PRINCIPAL_KEY] = None
        scope[SESSION_SCOPE_KEY] = None
        scope[CREDENTIAL_KEY] = None
        token = bearer_token(scope)
        exposed = query_tokens(scope)
        if exposed is not None:
            await self._revoke_exposed(exposed)
            if token is not None or _header(scope, b"authorization") is not None:
                raise InvalidRequest("Send the access token in one place only.")
            scope[CREDENTIAL_KEY] = "bearer"
            scope[AUTH_ERROR_KEY] = InvalidToken("query_string")
        elif token is not None:
            scope[CREDENTIAL_KEY] = "bearer"
            await self._resolve_bearer(scope, token)
        else:
            await self._resolve_session(scope)

    async def _revoke_exposed(self, values: list[str]) -> None:
        """Revoke the valid access tokens among ``values`` (sent in a URL).

        Raises:
            StoreUnavailable: a revocation could not be stored.
        """
        for value in list(dict.fromkeys(value for value in values if value))[:MAX_EXPOSED_TOKENS]:
            try:
                if await self.keyturn.token_revoker.revoke_exposed(value):
                    logger.warning("revoked an access token that was sent in a URL")
            except StoreUnavailable:
                logger.error("could not store the revocation of an access token sent in a URL")
                raise

    def check_csrf_header(self, scope: Scope, secret: str) -> None:
        """Both CSRF halves with the token from the ``X-CSRF-Token`` header only
        (for callers that cannot read the body, such as a Starlette
        authentication backend).

        Raises:
            CsrfFailed: cross-site, or no/wrong token.
        """
        check_same_origin(scope, self.allowed_origins)
        submitted = _header(scope, CSRF_HEADER)
        if not submitted:
            raise CsrfFailed()
        check_session_csrf(secret, submitted)

    async def _resolve_bearer(self, scope: Scope, token: str) -> None:
        """Resolve a bearer token; no cookie fallback, whatever the outcome.

        Raises:
            StoreUnavailable: a store the check needs is down (503, never an accept).
        """
        if not token:
            scope[AUTH_ERROR_KEY] = InvalidToken("empty")
            return
        try:
            scope[PRINCIPAL_KEY] = await self.bearer(token, scope)
        except StoreUnavailable:
            raise
        except InvalidToken as exc:
            scope[AUTH_ERROR_KEY] = exc
        except NotAuthenticated:
            scope[AUTH_ERROR_KEY] = InvalidToken("not_authenticated")
        except Exception as exc:  # fail closed: a surprise is a refused token, not a 500
            logger.error("bearer authentication failed unexpectedly", exc_info=exc)
            scope[AUTH_ERROR_KEY] = InvalidToken("unexpected")
        if scope[PRINCIPAL_KEY] is None:
            scope.pop(TOKEN_CLAIMS_KEY, None)

    async def _resolve_session(self, scope: Scope) -> None:
        secret = read_cookie(scope.get("headers", ()), SESSION_COOKIE)
        if secret is None:
            return
        scope[CREDENTIAL_KEY] = "session"
        try:
            validated = await self.keyturn.sessions.validate(secret)
        except NotAuthenticated as exc:
            scope[AUTH_ERROR_KEY] = exc
            return
        session, user = validated.session, validated.user
        scope[SESSION_SCOPE_KEY] = secret
        scope[PRINCIPAL_KEY] = Principal(
            subject=user.id,
            email=user.email,
            roles=tuple(user.roles),
            via="session",
            session_id=session.handle,
            expires_at=session.ends_at,
            auth_time=session.auth_time,
        )

    async def _check_csrf(self, scope: Scope, receive: Receive, secret: str) -> Receive:
        """Both CSRF halves; returns the ``receive`` the app must use.

        Raises:
            CsrfFailed: cross-site, or no/wrong token.
        """
        check_same_origin(scope, self.allowed_origins)
        submitted = _header(scope, CSRF_HEADER)
        if submitted is None and _is_urlencoded(scope):
            body = await _read_body(receive)
            receive = _replay(body, receive)
            submitted = _form_field(body, csrf.FORM_FIELD)
        if not submitted:
            raise CsrfFailed()
        check_session_csrf(secret, submitted)
        return receive


class _Disconnected(Exception):
    """The client disconnected before its body arrived."""


def _is_urlencoded(scope: Scope) -> bool:
    content_type = _header(scope, b"content-type") or ""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/x-www-form-urlencoded"


async def _read_body(receive: Receive) -> bytes:
    """The whole request body. Size is capped by the body-limit middleware
    outside, whose ``receive`` raises ``PayloadTooLarge`` past the limit."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected()
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


__all__ = [
    "AUTH_ERROR_KEY",
    "CREDENTIAL_KEY",
    "KEYTURN_KEY",
    "LOGIN_PATHS",
    "METRICS_KEY",
    "PREFIX_KEY",
    "PRINCIPAL_KEY",
    "SESSION_SCOPE_KEY",
    "TOKEN_CLAIMS_KEY",
    "AuthnMiddleware",
    "BearerAuthenticator",
    "allowed_origins",
    "check_same_origin",
    "check_websocket_origin",
    "deny_websocket",
    "normalize_origin",
    "query_token",
    "query_tokens",
    "request_origin",
    "route_path",
    "token_authenticator",
]
