"""Signing a browser in over HTTP, shared by the JSON API and the HTML pages:
the sign-in counted in the metrics, the session cookie that follows, and the
two-step sign-in of users with a second factor (#15).

The two steps are one reusable piece for every path that signs a browser in
(``/auth/login``, ``/login``, and ``/oauth/authorize`` through ``/login?next=``):
:func:`sign_in` checks the password and either opens the session or returns an
``mfa_token`` bound to a fresh random value in the ``__Host-keyturn_mfa`` cookie
(:func:`attach_pending`); :func:`finish_sign_in` checks the second factor
against that token and cookie and opens the session. ``next`` travels inside
the ``mfa_token``'s server-side record, never through the client.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from fastapi import Request, Response

from keyturn.errors import (
    InvalidCredentials,
    InvalidMfaToken,
    TooManyAttempts,
)
from keyturn.web.authn.cookies import (
    MFA_BINDING_COOKIE,
    PRE_SESSION_COOKIE,
    clear_mfa_binding_cookie,
    clear_pre_session_cookie,
    read_cookie,
    set_mfa_binding_cookie,
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
    from keyturn.accounts.mfa_auth import SignInOutcome
    from keyturn.mfa.challenge import IssuedMfaToken
    from keyturn.sessions.manager import IssuedSession
    from keyturn.settings import Settings

__all__ = [
    "attach_pending",
    "attach_session",
    "client_binding",
    "finish_sign_in",
    "pending_answer",
    "sign_in",
]


def client_binding(request: Request) -> str:
    """The ``mfa_token`` binding this browser holds.

    Raises:
        InvalidMfaToken: the cookie is missing (another browser, or expired).
    """
    value = read_cookie(request.scope["headers"], MFA_BINDING_COOKIE)
    if value is None:
        raise InvalidMfaToken()
    return value


async def sign_in(
    request: Request,
    email: str,
    password: str,
    *,
    remember: bool,
    next_path: str | None = None,
) -> tuple[SignInOutcome, str]:
    """The password step, counted in the metrics; returns the outcome and the
    client binding to set with :func:`attach_pending` when a second step follows.

    The session the browser already holds, if any, is ended when a session is
    opened (fixation defence); the new session always gets a fresh ID.

    Raises:
        InvalidCredentials, TooManyAttempts, StoreUnavailable: from the service.
    """
    keyturn = get_keyturn(request)
    logins = login_counter(request)
    binding = secrets.token_urlsafe(32)
    try:
        outcome = await keyturn.mfa_auth.sign_in(
            email,
            password,
            remember=remember,
            ip=client_ip(request),
            user_agent=user_agent(request),
            replaces_secret=session_secret(request),
            client_binding=binding,
            next_path=next_path,
        )
    except TooManyAttempts:
        logins.labels(outcome="throttled").inc()
        raise
    except InvalidCredentials:
        logins.labels(outcome="failure").inc()
        raise
    if outcome.session is not None:
        logins.labels(outcome="success").inc()
    return outcome, binding


async def finish_sign_in(
    request: Request,
    mfa_token: str,
    *,
    code: str | None = None,
    recovery_code: str | None = None,
    webauthn: str | Mapping[str, Any] | None = None,
) -> SignInOutcome:
    """The second step, counted in the metrics like a sign-in.

    Raises:
        InvalidMfaToken: the token is dead, or this browser does not hold its binding.
        InvalidMfaCode, WebAuthnFailed, TooManyAttempts, InvalidRequest,
            StoreUnavailable: from :meth:`keyturn.accounts.mfa_auth.MfaAuth.finish`.
    """
    logins = login_counter(request)
    try:
        outcome = await get_keyturn(request).mfa_auth.finish(
            mfa_token,
            client_binding=client_binding(request),
            code=code,
            recovery_code=recovery_code,
            webauthn=webauthn,
            ip=client_ip(request),
            user_agent=user_agent(request),
            replaces_secret=session_secret(request),
        )
    except TooManyAttempts:
        logins.labels(outcome="throttled").inc()
        raise
    except InvalidCredentials:  # InvalidMfaCode and WebAuthnFailed
        logins.labels(outcome="failure").inc()
        raise
    logins.labels(outcome="success").inc()
    return outcome


def pending_answer(pending: IssuedMfaToken, now: float) -> dict[str, Any]:
    """The JSON of a password step that needs a second factor (SPEC)."""
    return {
        "mfa_required": True,
        "mfa_token": pending.token,
        "methods": list(pending.methods),
        "expires_in": max(1, int(pending.expires_at - now)),
    }


def attach_pending(response: Response, request: Request, binding: str) -> None:
    """Set the cookie that binds the ``mfa_token`` to this browser."""
    ttl = get_keyturn(request).settings.mfa_token_ttl
    set_mfa_binding_cookie(response, binding, max_age=ttl)


def attach_session(response: Response, request: Request, issued: IssuedSession) -> None:
    """Set the session cookie of ``issued`` and drop the login-CSRF and MFA cookies.

    A normal session is a browser-session cookie (no ``Max-Age``); a
    "remember me" one lives ``remember_max_age`` seconds, never longer than the
    session itself (SEC-10).
    """
    settings: Settings = get_keyturn(request).settings
    max_age = settings.remember_max_age if issued.session.remember else None
    set_session_cookie(response, issued.secret, max_age=max_age)
    headers = request.scope["headers"]
    if read_cookie(headers, PRE_SESSION_COOKIE) is not None:
        clear_pre_session_cookie(response)
    if read_cookie(headers, MFA_BINDING_COOKIE) is not None:
        clear_mfa_binding_cookie(response)
