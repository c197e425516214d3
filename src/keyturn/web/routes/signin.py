"""Signing a browser in over HTTP, shared by the JSON API and the HTML pages:
the sign-in counted in the metrics, and the session cookie that follows."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request, Response

from keyturn.errors import InvalidCredentials, TooManyAttempts
from keyturn.web.authn.cookies import (
    PRE_SESSION_COOKIE,
    clear_pre_session_cookie,
    read_cookie,
    set_session_cookie,
)
from keyturn.web.dependencies import (
    client_ip,
    get_keyturn,
    login_counter,
    session_secret,
    user_agent,
)

if TYPE_CHECKING:
    from keyturn.sessions.manager import IssuedSession
    from keyturn.settings import Settings
    from keyturn.stores.records import User

__all__ = ["attach_session", "sign_in"]


async def sign_in(
    request: Request, email: str, password: str, *, remember: bool
) -> tuple[User, IssuedSession]:
    """Sign in through the auth service, counting the outcome in the metrics.

    The session the browser already holds, if any, is ended (fixation defence);
    the new session always gets a fresh ID.

    Raises:
        InvalidCredentials, TooManyAttempts, StoreUnavailable: from the service.
    """
    keyturn = get_keyturn(request)
    logins = login_counter(request)
    try:
        result = await keyturn.auth.sign_in(
            email,
            password,
            remember=remember,
            ip=client_ip(request),
            user_agent=user_agent(request),
            replaces_secret=session_secret(request),
        )
    except TooManyAttempts:
        logins.labels(outcome="throttled").inc()
        raise
    except InvalidCredentials:
        logins.labels(outcome="failure").inc()
        raise
    logins.labels(outcome="success").inc()
    return result


def attach_session(response: Response, request: Request, issued: IssuedSession) -> None:
    """Set the session cookie of ``issued`` and drop the login-CSRF cookie.

    A normal session is a browser-session cookie (no ``Max-Age``); a
    "remember me" one lives ``remember_max_age`` seconds, never longer than the
    session itself (SEC-10).
    """
    settings: Settings = get_keyturn(request).settings
    max_age = settings.remember_max_age if issued.session.remember else None
    set_session_cookie(response, issued.secret, max_age=max_age)
    if read_cookie(request.scope["headers"], PRE_SESSION_COOKIE) is not None:
        clear_pre_session_cookie(response)
