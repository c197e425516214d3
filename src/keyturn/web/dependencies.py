"""FastAPI dependencies over what :class:`~keyturn.web.authn.AuthnMiddleware` resolved.

Host applications protect a route with::

    from keyturn.web.dependencies import CurrentPrincipal

    @app.get("/orders")
    async def orders(principal: CurrentPrincipal) -> list[Order]: ...

The middleware has already authenticated the request (once) and enforced CSRF
on cookie-authenticated unsafe methods; these dependencies only read the result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from keyturn.errors import NotAuthenticated
from keyturn.principal import Principal
from keyturn.ratelimit import client_address
from keyturn.web.authn import AUTH_ERROR_KEY, PRINCIPAL_KEY, SESSION_SCOPE_KEY

if TYPE_CHECKING:
    from keyturn.runtime import Keyturn

#: User-Agent strings are stored for the sessions list; longer ones are cut.
MAX_USER_AGENT = 512


def _resolved(request: Request) -> None:
    if PRINCIPAL_KEY not in request.scope:
        raise RuntimeError(
            "keyturn.web.authn.AuthnMiddleware is not installed: add it to the app "
            "(create_app does) before using keyturn's dependencies"
        )


def _principal(request: Request) -> Principal | None:
    _resolved(request)
    principal: Principal | None = request.scope[PRINCIPAL_KEY]
    return principal


# The dependencies are ``async def`` on purpose: FastAPI runs a plain ``def``
# dependency in a worker thread, which halved authenticated throughput.


async def optional_principal(request: Request) -> Principal | None:
    """The authenticated caller, or None for an anonymous request."""
    return _principal(request)


def require_principal(request: Request) -> Principal:
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


async def current_principal(request: Request) -> Principal:
    """The authenticated caller (see :func:`require_principal`).

    Raises:
        NotAuthenticated: no valid credential.
    """
    return require_principal(request)


def session_secret(request: Request) -> str | None:
    """The caller's session secret when it came with a valid session cookie."""
    _resolved(request)
    secret: str | None = request.scope[SESSION_SCOPE_KEY]
    return secret


def get_keyturn(request: Request) -> Keyturn:
    """The app's :class:`~keyturn.runtime.Keyturn`."""
    keyturn: Keyturn = request.app.state.keyturn
    return keyturn


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
