"""keyturn for plain Starlette apps: an authentication backend.

::

    from starlette.applications import Starlette
    from starlette.authentication import requires
    from starlette.middleware import Middleware
    from starlette.middleware.authentication import AuthenticationMiddleware
    from keyturn.web.starlette import KeyturnAuthBackend, on_auth_error

    kt = Keyturn(settings)

    @requires("authenticated")
    async def notes(request): ...  # request.user.principal is the Principal

    app = Starlette(
        routes=[Route("/notes", notes, methods=["GET", "POST"])],
        middleware=[Middleware(AuthenticationMiddleware, backend=KeyturnAuthBackend(kt),
                               on_error=on_auth_error)],
        lifespan=kt.lifespan,
    )

The backend resolves the caller from the ``Authorization: Bearer`` token or the
session cookie with the same :class:`~keyturn.web.authn.resolver.CredentialResolver`
that :class:`~keyturn.web.authn.middleware.AuthnMiddleware` uses, and applies the
same CSRF gate (:mod:`keyturn.web.authn.csrf`); it reuses the middleware's answer
when that already ran, as in apps built with :func:`keyturn.web.install`.
``request.auth.scopes`` holds ``"authenticated"``,
``"role:<role>"`` for each of the user's roles and, for a token, the token's
OAuth scopes; so ``@requires("role:admin")`` and ``@requires("notes:write")``
work. A session carries no OAuth scopes: a route that needs one is token-only
under ``@requires`` (:func:`keyturn.web.require` instead lets sessions through,
see :mod:`keyturn.web.policy`).

Cookie-authenticated unsafe requests (POST, PUT, PATCH, DELETE) must carry the
session's CSRF token in the ``X-CSRF-Token`` header (a backend cannot read form
bodies) and not come from another site; otherwise, as for a refused bearer
token or a store outage, the backend raises
:class:`KeyturnAuthenticationError`, which :func:`on_auth_error` renders as
keyturn's JSON error (403 ``csrf_failed``, 401 ``invalid_token``, 503
``store_unavailable``).

A WebSocket handshake authenticated by the session cookie must carry an
``Origin`` of this site (:func:`~keyturn.web.authn.origins.check_websocket_origin`):
another site's page could otherwise open a socket that acts as the user.
Starlette's ``AuthenticationMiddleware`` answers a refused handshake by closing
it (code 1000) before it is accepted. Bearer-authenticated handshakes need no
``Origin``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response

from keyturn.csrf import allowed_origins
from keyturn.errors import (
    CsrfFailed,
    InvalidRequest,
    InvalidToken,
    KeyturnError,
    StoreUnavailable,
)
from keyturn.principal import Principal
from keyturn.web.authn.csrf import check_csrf_header, needs_csrf
from keyturn.web.authn.middleware import LOGIN_PATHS
from keyturn.web.authn.origins import check_websocket_origin
from keyturn.web.authn.resolver import CredentialResolver
from keyturn.web.authn.scope import (
    AUTH_ERROR_KEY,
    CREDENTIAL_KEY,
    KEYTURN_KEY,
    PRINCIPAL_KEY,
    SESSION_SCOPE_KEY,
)
from keyturn.web.errors import error_response, json_error
from keyturn.web.routes.oauth import OAUTH_PATHS

if TYPE_CHECKING:
    from keyturn.runtime import Keyturn

__all__ = ["KeyturnAuthBackend", "KeyturnAuthenticationError", "KeyturnUser", "on_auth_error"]


class KeyturnUser(BaseUser):
    """The authenticated caller as a Starlette user; ``principal`` is keyturn's
    :class:`~keyturn.principal.Principal` (subject, roles, ``via``, ...)."""

    def __init__(self, principal: Principal) -> None:
        self.principal = principal

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.principal.email

    @property
    def identity(self) -> str:
        return self.principal.subject

    def __repr__(self) -> str:
        return f"KeyturnUser({self.principal.email!r}, via={self.principal.via!r})"


class KeyturnAuthenticationError(AuthenticationError):
    """A credential was presented and refused; ``error`` is the keyturn error
    (rendered by :func:`on_auth_error`)."""

    def __init__(self, error: KeyturnError) -> None:
        super().__init__(error.detail)
        self.error = error


def scopes_of(principal: Principal) -> list[str]:
    """``request.auth.scopes`` for ``principal``: ``"authenticated"``, one
    ``"role:<role>"`` per role, and a token's OAuth scopes."""
    return ["authenticated", *(f"role:{role}" for role in principal.roles), *principal.scopes]


class KeyturnAuthBackend(AuthenticationBackend):
    """A Starlette ``AuthenticationBackend`` over keyturn (see the module doc).

    Args:
        keyturn: the instance that checks credentials.
        prefix: where keyturn's own endpoints are mounted in this app, if they
            are (``Mount("/id", app=keyturn_app)``: ``prefix="/id"``), so that
            signing in again with a session cookie present is not refused for
            want of a CSRF token (those endpoints defend against login CSRF
            themselves).
    """

    def __init__(self, keyturn: Keyturn, *, prefix: str = "") -> None:
        self.keyturn = keyturn
        prefix = prefix.rstrip("/")
        self._exempt = frozenset(prefix + path for path in (*LOGIN_PATHS, *OAUTH_PATHS))
        self._resolver = CredentialResolver(keyturn)
        self._allowed_origins = allowed_origins(keyturn.settings)

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        """The caller's credentials and user, or None for an anonymous request.

        Raises:
            KeyturnAuthenticationError: a refused bearer token (``invalid_token``),
                a failed CSRF check (``csrf_failed``; for a cookie-authenticated
                WebSocket handshake, a missing or foreign ``Origin``), a token sent twice
                (``invalid_request``) or a store outage (``store_unavailable``).
        """
        scope = conn.scope
        if PRINCIPAL_KEY not in scope:  # keyturn's middleware has not run: resolve here
            scope[KEYTURN_KEY] = self.keyturn
            try:
                await self._resolver.resolve(scope)
                secret = scope[SESSION_SCOPE_KEY]
                if scope["type"] == "websocket":  # no method: not "a safe GET"
                    if secret is not None:
                        check_websocket_origin(scope, self._allowed_origins)
                elif needs_csrf(scope, self._exempt):
                    check_csrf_header(scope, secret, self._allowed_origins)
            except (CsrfFailed, InvalidRequest, StoreUnavailable) as exc:
                raise KeyturnAuthenticationError(exc) from None
        principal: Principal | None = scope[PRINCIPAL_KEY]
        if principal is None:
            error = scope.get(AUTH_ERROR_KEY)
            if scope.get(CREDENTIAL_KEY) == "bearer" and isinstance(error, InvalidToken):
                raise KeyturnAuthenticationError(error)
            return None  # anonymous, or a session cookie that has ended
        return AuthCredentials(scopes_of(principal)), KeyturnUser(principal)


def on_auth_error(conn: HTTPConnection, exc: Exception) -> Response:
    """``on_error`` for Starlette's ``AuthenticationMiddleware``: keyturn's JSON
    error for a :class:`KeyturnAuthenticationError`, a 400 otherwise."""
    if isinstance(exc, KeyturnAuthenticationError):
        response: Response = error_response(exc.error)
        return response
    result: JSONResponse = json_error(400, "invalid_request", str(exc) or "Bad request.")
    return result
