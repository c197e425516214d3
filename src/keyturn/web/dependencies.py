"""FastAPI dependencies over what :class:`~keyturn.web.authn.middleware.AuthnMiddleware` resolved.

Host applications protect a route with::

    from keyturn.web import CurrentPrincipal, require

    @app.get("/orders")
    async def orders(principal: CurrentPrincipal) -> list[Order]: ...

    @app.delete("/orders/{id}", dependencies=[Depends(require(roles=("admin",)))])
    async def delete_order(id: str) -> None: ...

The middleware has already authenticated the request (once), enforced CSRF on
cookie-authenticated unsafe methods, and put the :class:`~keyturn.runtime.Keyturn`
on the scope (``scope["keyturn"]``); these dependencies only read the result.
Per-route policies (roles, scopes, credential kind, fresh sign-in) are
:func:`keyturn.web.policy.require`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from keyturn.accounts.addresses import client_address
from keyturn.errors import NotAuthenticated
from keyturn.principal import Principal
from keyturn.sessions.devices import MAX_USER_AGENT
from keyturn.web.authn.scope import (
    AUTH_ERROR_KEY,
    KEYTURN_KEY,
    METRICS_KEY,
    PREFIX_KEY,
    PRINCIPAL_KEY,
    SESSION_SCOPE_KEY,
)

if TYPE_CHECKING:
    from prometheus_client import Counter

    from keyturn.runtime import Keyturn


def _resolved(request: HTTPConnection) -> None:
    if PRINCIPAL_KEY not in request.scope:
        raise RuntimeError(
            "keyturn's middleware is not installed: call keyturn.web.install(app, keyturn) "
            "before using keyturn's dependencies"
        )


def _principal(request: HTTPConnection) -> Principal | None:
    _resolved(request)
    principal: Principal | None = request.scope[PRINCIPAL_KEY]
    return principal


# The dependencies are ``async def`` on purpose: FastAPI runs a plain ``def``
# dependency in a worker thread, which halved authenticated throughput.


async def optional_principal(request: HTTPConnection) -> Principal | None:
    """The authenticated caller, or None for an anonymous request (an HTTP
    request or a WebSocket handshake)."""
    return _principal(request)


def require_principal(request: HTTPConnection) -> Principal:
    """The authenticated caller, read straight from the request (no dependency
    injection: the hottest routes call this directly).

    Raises:
        NotAuthenticated: no valid credential (401 with ``WWW-Authenticate:
            Bearer``; ``InvalidToken`` and ``error="invalid_token"`` when a
            bearer token was sent but refused).
    """
    principal = _principal(request)
    if principal is None:
        error = request.scope.get(AUTH_ERROR_KEY)
        raise error if isinstance(error, NotAuthenticated) else NotAuthenticated()
    return principal


async def current_principal(request: HTTPConnection) -> Principal:
    """The authenticated caller (see :func:`require_principal`), in HTTP and
    WebSocket routes alike (a refused handshake gets the error as a denial response).

    Raises:
        NotAuthenticated: no valid credential.
    """
    return require_principal(request)


def session_secret(request: HTTPConnection) -> str | None:
    """The caller's session secret when it came with a valid session cookie."""
    _resolved(request)
    secret: str | None = request.scope[SESSION_SCOPE_KEY]
    return secret


def get_keyturn(request: HTTPConnection) -> Keyturn:
    """The :class:`~keyturn.runtime.Keyturn` serving this request: the one the
    middleware put on the scope, else ``app.state.keyturn``.

    Raises:
        RuntimeError: neither is there (keyturn is not installed on this app).
    """
    keyturn: Keyturn | None = request.scope.get(KEYTURN_KEY)
    if keyturn is None:
        keyturn = getattr(request.app.state, "keyturn", None)
        if keyturn is None:
            raise RuntimeError(
                "no Keyturn on this app: call keyturn.web.install(app, keyturn) first"
            )
    return keyturn


def base_path(request: HTTPConnection) -> str:
    """Where keyturn's routes live for this request: the app's ``root_path``
    plus the ``prefix`` given to :func:`keyturn.web.install` (no trailing slash;
    ``""`` at the root). Links, form actions, redirects and path-scoped cookies
    are built on it."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    prefix: str = request.scope.get(PREFIX_KEY, "")
    return root + prefix


def login_counter(request: Request) -> Counter:
    """``keyturn_logins_total{outcome}`` of this installation's metrics."""
    metrics = request.scope.get(METRICS_KEY)
    if metrics is None:
        metrics = request.app.state.metrics
    counter: Counter = metrics.logins
    return counter


def client_ip(request: Request) -> str:
    """The caller's address, believing ``X-Forwarded-For`` only from trusted proxies."""
    peer = request.client.host if request.client else None
    forwarded = request.headers.getlist("x-forwarded-for")
    return client_address(
        peer,
        ", ".join(forwarded) if forwarded else None,
        get_keyturn(request).settings.trusted_proxies,
    )


def user_agent(request: Request) -> str:
    """The caller's ``User-Agent``, cut to :data:`MAX_USER_AGENT` characters."""
    return request.headers.get("user-agent", "")[:MAX_USER_AGENT]


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]
