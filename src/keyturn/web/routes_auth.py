"""The JSON auth API for sessions (SPEC "JSON auth API"): ``/auth/*``.

Bodies are JSON and only JSON: any other ``Content-Type`` is 415
``unsupported_media_type`` before the body is read, so a cross-site HTML form or
a "simple" ``fetch`` (``text/plain``) can never reach these endpoints (SEC-29).
The session secret travels only in the ``Set-Cookie`` header; bodies carry the
public handle and the CSRF token, never the secret.

CSRF for cookie-authenticated calls is enforced before these handlers run, by
:class:`~keyturn.web.authn.AuthnMiddleware`; sign-in and registration add the
content-type rule and :func:`~keyturn.web.authn.check_same_origin` themselves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StrictBool, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from keyturn.clock import isoformat
from keyturn.errors import InvalidCredentials, NotAuthenticated, TooManyAttempts
from keyturn.principal import Principal
from keyturn.web.authn import allowed_origins, check_same_origin
from keyturn.web.cookies import (
    PRE_SESSION_COOKIE,
    clear_pre_session_cookie,
    clear_session_cookie,
    read_cookie,
    set_session_cookie,
)
from keyturn.web.dependencies import (
    CurrentPrincipal,
    client_ip,
    get_keyturn,
    session_secret,
    user_agent,
)

if TYPE_CHECKING:
    from keyturn.sessions import IssuedSession
    from keyturn.settings import Settings
    from keyturn.stores.base import Session, User

router = APIRouter(prefix="/auth", tags=["auth"])

CSRF_RESPONSE_HEADER = "X-CSRF-Token"

_Body = TypeVar("_Body", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Credentials(_Strict):
    """``POST /auth/register`` (and the base of sign-in)."""

    email: StrictStr
    password: StrictStr


class LoginBody(Credentials):
    """``POST /auth/login``."""

    remember: StrictBool = False


class PasswordChangeBody(_Strict):
    """``POST /auth/password``."""

    current_password: StrictStr
    new_password: StrictStr


# --- helpers shared with the HTML pages ---------------------------------------------


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
    logins = request.app.state.metrics.logins
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


def session_expiry(session: Session) -> float:
    """When a session ends if nothing happens: idle timeout or absolute lifetime."""
    return min(session.expires_at, session.last_seen_at + session.idle_timeout)


async def _json_body(request: Request, model: type[_Body]) -> _Body:
    """Parse the body as ``model``, accepting ``application/json`` only.

    Raises:
        HTTPException: 415 when the body is not declared as JSON.
        pydantic.ValidationError: malformed JSON or fields (400 invalid_request).
    """
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise StarletteHTTPException(415, "The request body must be application/json.")
    return model.model_validate_json(await request.body())


def _require_same_origin(request: Request) -> None:
    check_same_origin(request.scope, allowed_origins(get_keyturn(request).settings))


def _session_principal(request: Request, principal: Principal) -> str:
    """The caller's session secret. Bearer callers get their own branch in #4.

    Raises:
        NotAuthenticated: the caller did not come with a session cookie.
    """
    secret = session_secret(request)
    if principal.via != "session" or secret is None:
        raise NotAuthenticated()
    return secret


# --- endpoints ------------------------------------------------------------------------


@router.post("/register", status_code=201)
async def register(request: Request) -> JSONResponse:
    """Create an account: 201 ``{"id","email"}``. Does not sign in."""
    _require_same_origin(request)
    body = await _json_body(request, Credentials)
    user = await get_keyturn(request).auth.register(body.email, body.password)
    return JSONResponse({"id": user.id, "email": user.email}, status_code=201)


@router.post("/login")
async def login(request: Request) -> JSONResponse:
    """Sign in: the session cookie, and the user plus the CSRF token in the body."""
    _require_same_origin(request)
    body = await _json_body(request, LoginBody)
    user, issued = await sign_in(request, body.email, body.password, remember=body.remember)
    response = JSONResponse(
        {
            "user": {"id": user.id, "email": user.email, "roles": list(user.roles)},
            "csrf_token": issued.csrf_token,
        }
    )
    attach_session(response, request, issued)
    return response


@router.post("/logout", status_code=204)
async def logout(request: Request, principal: CurrentPrincipal) -> Response:
    """End the caller's session and clear its cookie."""
    secret = _session_principal(request, principal)
    await get_keyturn(request).auth.sign_out(
        secret, ip=client_ip(request), user_agent=user_agent(request)
    )
    response = Response(status_code=204)
    clear_session_cookie(response)
    return response


@router.post("/logout-all", status_code=204)
async def logout_all(request: Request, principal: CurrentPrincipal) -> Response:
    """End every session of the caller, this one included, and clear the cookie."""
    await get_keyturn(request).auth.sign_out_everywhere(principal.subject, ip=client_ip(request))
    response = Response(status_code=204)
    clear_session_cookie(response)
    return response


@router.get("/whoami")
async def whoami(request: Request, principal: CurrentPrincipal) -> JSONResponse:
    """Who the caller is; cookie callers also get their CSRF token in a header,
    so a reloaded single-page app can recover it without a new sign-in."""
    headers: dict[str, str] = {}
    secret = session_secret(request)
    if principal.via == "session" and secret is not None:
        headers[CSRF_RESPONSE_HEADER] = get_keyturn(request).sessions.csrf_token(secret)
    body: dict[str, Any] = {
        "sub": principal.subject,
        "email": principal.email,
        "roles": list(principal.roles),
        "via": principal.via,
        "session_id": principal.session_id,
        "expires_at": isoformat(principal.expires_at),
    }
    return JSONResponse(body, headers=headers)


@router.get("/sessions")
async def list_sessions(request: Request, principal: CurrentPrincipal) -> JSONResponse:
    """The caller's active sign-ins, oldest first; ``current`` marks this one."""
    sessions = await get_keyturn(request).sessions.list(principal.subject)
    return JSONResponse(
        [
            {
                "id": session.handle,
                "kind": "browser",
                "created_at": isoformat(session.created_at),
                "last_seen_at": isoformat(session.last_seen_at),
                "expires_at": isoformat(session_expiry(session)),
                "ip": session.ip,
                "user_agent": session.user_agent,
                "current": session.handle == principal.session_id,
            }
            for session in sessions
        ]
    )


@router.delete("/sessions/{session_id}", status_code=204)
async def revoke_session(
    request: Request, session_id: str, principal: CurrentPrincipal
) -> Response:
    """End one of the caller's sign-ins (404 ``not_found`` if it is not theirs)."""
    await get_keyturn(request).auth.revoke_session(
        principal.subject, session_id, ip=client_ip(request)
    )
    response = Response(status_code=204)
    if session_id == principal.session_id:
        clear_session_cookie(response)
    return response


@router.post("/password", status_code=204)
async def change_password(request: Request, principal: CurrentPrincipal) -> Response:
    """Change the password: this session gets a new ID (cookie and CSRF token),
    every other session of the user ends."""
    secret = _session_principal(request, principal)
    body = await _json_body(request, PasswordChangeBody)
    issued = await get_keyturn(request).auth.change_password(
        secret, body.current_password, body.new_password, ip=client_ip(request)
    )
    response = Response(status_code=204, headers={CSRF_RESPONSE_HEADER: issued.csrf_token})
    attach_session(response, request, issued)
    return response
