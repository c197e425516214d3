"""The JSON auth API for sessions (SPEC "JSON auth API"): ``/auth/*``.

Bodies are JSON and only JSON: any other ``Content-Type`` is 415
``unsupported_media_type`` before the body is read, so a cross-site HTML form or
a "simple" ``fetch`` (``text/plain``) can never reach these endpoints (SEC-29).
The session secret travels only in the ``Set-Cookie`` header; bodies carry the
public handle and the CSRF token, never the secret.

CSRF for cookie-authenticated calls is enforced before these handlers run, by
:class:`~keyturn.web.authn.AuthnMiddleware`; sign-in and registration add the
content-type rule and :func:`~keyturn.web.authn.check_same_origin` themselves.

Every endpoint that needs a caller takes either credential: a session cookie or
an access token (``Authorization: Bearer``, no CSRF token needed). A token
caller's sign-in is its ``sid``: the refresh family (or, for a token minted by
``POST /auth/token``, the browser session) it belongs to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StrictBool, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from keyturn.clock import isoformat
from keyturn.errors import (
    Forbidden,
    InvalidCredentials,
    InvalidRequest,
    InvalidToken,
    NotAuthenticated,
    NotFound,
    TooManyAttempts,
)
from keyturn.principal import Principal
from keyturn.web.authn import TOKEN_CLAIMS_KEY, allowed_origins, check_same_origin
from keyturn.web.cookies import (
    PRE_SESSION_COOKIE,
    clear_pre_session_cookie,
    clear_refresh_cookie,
    clear_session_cookie,
    read_cookie,
    refresh_cookie_path,
    set_session_cookie,
)
from keyturn.web.dependencies import (
    CurrentPrincipal,
    client_ip,
    get_keyturn,
    login_counter,
    require_principal,
    session_secret,
    user_agent,
)
from keyturn.web.openapi_docs import (
    ACCESS_TOKEN,
    BEARER_OR_SESSION,
    REGISTERED,
    SIGN_INS,
    SIGNED_IN,
    WHOAMI,
    answer,
    error_responses,
    json_request,
)

if TYPE_CHECKING:
    from keyturn.sessions import IssuedSession
    from keyturn.settings import Settings
    from keyturn.stores.base import RefreshFamily, Session, User
    from keyturn.tokens import AccessTokenClaims

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


class ReauthenticateBody(_Strict):
    """``POST /auth/reauthenticate``."""

    password: StrictStr


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
    """The caller's session secret.

    Raises:
        NotAuthenticated: the caller did not come with a session cookie.
    """
    secret = session_secret(request)
    if principal.via != "session" or secret is None:
        raise NotAuthenticated()
    return secret


def _token_claims(request: Request) -> AccessTokenClaims:
    """The verified claims of a bearer caller's access token.

    Raises:
        InvalidToken: the request was not authenticated by a token.
    """
    claims: AccessTokenClaims | None = request.scope.get(TOKEN_CLAIMS_KEY)
    if claims is None:
        raise InvalidToken("no_claims")
    return claims


def family_expiry(family: RefreshFamily, refresh_token_ttl: int) -> float:
    """When a refresh family ends if unused: disuse or its absolute cap."""
    return min(family.expires_at, family.last_used_at + refresh_token_ttl)


# --- endpoints ------------------------------------------------------------------------


# Routes are matched in the order they are declared, and each failed match costs
# a few microseconds in FastAPI's router: the hottest route comes first.
@router.get(
    "/whoami",
    openapi_extra=BEARER_OR_SESSION,
    responses=error_responses(401, _200=answer("The caller.", WHOAMI)),
)
async def whoami(request: Request) -> JSONResponse:
    """Who the caller is; cookie callers also get their CSRF token in a header,
    so a reloaded single-page app can recover it without a new sign-in. For a
    token caller ``session_id`` is the token's ``sid`` and ``expires_at`` its
    ``exp``."""
    # No Depends(): FastAPI's dependency solving cost more than the whole
    # credential check on this, the most frequent authenticated call.
    principal = require_principal(request)
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
    if principal.via == "token":
        claims = _token_claims(request)
        body["session_id"], body["expires_at"] = claims.sid, isoformat(claims.exp)
    return JSONResponse(body, headers=headers)


@router.post(
    "/register",
    status_code=201,
    openapi_extra=json_request(Credentials),
    responses=error_responses(400, 403, 409, 415, 429, _201=answer("The new account.", REGISTERED)),
)
async def register(request: Request) -> JSONResponse:
    """Create an account: 201 ``{"id","email"}``. Does not sign in. Throttled per
    client address and in all (429 ``too_many_attempts`` with ``Retry-After``)."""
    _require_same_origin(request)
    body = await _json_body(request, Credentials)
    user = await get_keyturn(request).auth.register(
        body.email, body.password, ip=client_ip(request), user_agent=user_agent(request)
    )
    return JSONResponse({"id": user.id, "email": user.email}, status_code=201)


@router.post(
    "/login",
    openapi_extra=json_request(LoginBody),
    responses=error_responses(
        400, 401, 403, 415, 429, _200=answer("Signed in; the cookie is set.", SIGNED_IN)
    ),
)
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


@router.post(
    "/logout",
    status_code=204,
    openapi_extra=BEARER_OR_SESSION,
    responses=error_responses(401, 403, _204=answer("Signed out.")),
)
async def logout(request: Request, principal: CurrentPrincipal) -> Response:
    """End the caller's session and clear its cookie; a token caller's token and
    its refresh family are revoked instead (in SPA refresh-cookie mode only from
    the server's own site or an allowed origin, as the answer clears the cookie)."""
    if principal.via == "token":
        spa = get_keyturn(request).settings.refresh_cookie
        if spa:  # the answer clears a browser's cookie: never for another site
            _require_same_origin(request)
        await get_keyturn(request).tokens.logout_token(_token_claims(request))
        response = Response(status_code=204)
        if spa:  # SPA mode: drop the dead cookie
            clear_refresh_cookie(response, path=refresh_cookie_path(request.scope, "/auth/logout"))
        return response
    secret = _session_principal(request, principal)
    await get_keyturn(request).auth.sign_out(
        secret, ip=client_ip(request), user_agent=user_agent(request)
    )
    response = Response(status_code=204)
    clear_session_cookie(response)
    return response


@router.post(
    "/logout-all",
    status_code=204,
    openapi_extra=BEARER_OR_SESSION,
    responses=error_responses(401, 403, _204=answer("Every sign-in ended.")),
)
async def logout_all(request: Request, principal: CurrentPrincipal) -> Response:
    """End every session, refresh family and access token of the caller, this
    one included, and clear the cookie of a cookie caller."""
    await get_keyturn(request).tokens.logout_all(principal.subject, ip=client_ip(request))
    response = Response(status_code=204)
    if principal.via == "session":
        clear_session_cookie(response)
    return response


@router.get(
    "/sessions",
    openapi_extra=BEARER_OR_SESSION,
    responses=error_responses(401, _200=answer("The caller's sign-ins.", SIGN_INS)),
)
async def list_sessions(request: Request, principal: CurrentPrincipal) -> JSONResponse:
    """The caller's active sign-ins, browser sessions and refresh families
    (``"kind": "token"``), oldest first; ``current`` marks the caller's own."""
    keyturn = get_keyturn(request)
    sessions = await keyturn.sessions.list(principal.subject)
    families = await keyturn.tokens.list_families(principal.subject)
    ttl = keyturn.settings.refresh_token_ttl
    rows: list[tuple[float, dict[str, Any]]] = [
        (
            session.created_at,
            _sign_in_row(
                session.handle,
                "browser",
                session.created_at,
                session.last_seen_at,
                session_expiry(session),
                session.ip,
                session.user_agent,
                principal,
            ),
        )
        for session in sessions
    ]
    rows += [
        (
            family.created_at,
            _sign_in_row(
                family.id,
                "token",
                family.created_at,
                family.last_used_at,
                family_expiry(family, ttl),
                family.ip,
                family.user_agent,
                principal,
            ),
        )
        for family in families
    ]
    rows.sort(key=lambda row: row[0])
    return JSONResponse([row for _, row in rows])


def _sign_in_row(
    handle: str,
    kind: str,
    created_at: float,
    last_seen_at: float,
    expires_at: float,
    ip: str | None,
    agent: str | None,
    principal: Principal,
) -> dict[str, Any]:
    return {
        "id": handle,
        "kind": kind,
        "created_at": isoformat(created_at),
        "last_seen_at": isoformat(last_seen_at),
        "expires_at": isoformat(expires_at),
        "ip": ip,
        "user_agent": agent,
        "current": handle == principal.session_id,
    }


@router.delete(
    "/sessions/{session_id}",
    status_code=204,
    openapi_extra=BEARER_OR_SESSION,
    responses=error_responses(401, 403, 404, _204=answer("The sign-in ended.")),
)
async def revoke_session(
    request: Request, session_id: str, principal: CurrentPrincipal
) -> Response:
    """End one of the caller's sign-ins, a browser session or a refresh family
    (404 ``not_found`` if it is not theirs)."""
    keyturn = get_keyturn(request)
    try:
        await keyturn.auth.revoke_session(principal.subject, session_id, ip=client_ip(request))
    except NotFound:
        await keyturn.tokens.revoke_family(principal.subject, session_id)
    response = Response(status_code=204)
    if principal.via == "session" and session_id == principal.session_id:
        clear_session_cookie(response)
    return response


@router.post(
    "/password",
    status_code=204,
    openapi_extra={**json_request(PasswordChangeBody), **BEARER_OR_SESSION},
    responses=error_responses(400, 401, 403, 415, 429, _204=answer("Password changed.")),
)
async def change_password(request: Request, principal: CurrentPrincipal) -> Response:
    """Change the password, then end every other sign-in and every access token
    of the user. A cookie caller's session gets a new ID (cookie and CSRF token);
    a token caller keeps its refresh family, whose next refresh gets a new
    access token."""
    body = await _json_body(request, PasswordChangeBody)
    keyturn = get_keyturn(request)
    if principal.via == "token":
        await keyturn.tokens.change_password(
            _token_claims(request),
            body.current_password,
            body.new_password,
            ip=client_ip(request),
        )
        return Response(status_code=204)
    secret = _session_principal(request, principal)
    issued = await keyturn.auth.change_password(
        secret, body.current_password, body.new_password, ip=client_ip(request)
    )
    response = Response(status_code=204, headers={CSRF_RESPONSE_HEADER: issued.csrf_token})
    attach_session(response, request, issued)
    return response


@router.post(
    "/reauthenticate",
    status_code=204,
    openapi_extra={**json_request(ReauthenticateBody), **BEARER_OR_SESSION},
    responses=error_responses(400, 401, 403, 415, 429, _204=answer("Sign-in time renewed.")),
)
async def reauthenticate(request: Request, principal: CurrentPrincipal) -> Response:
    """Re-check the password of a cookie caller: the session's sign-in time
    becomes now (for routes that demand a fresh sign-in, ``require(fresh=N)``)
    and the session gets a new ID (cookie and CSRF token). Wrong passwords count
    towards the sign-in throttle. Token callers sign in again with the password
    grant instead (400)."""
    if principal.via != "session":
        raise InvalidRequest(
            "Bearer clients re-authenticate with the password grant (POST /oauth/token)."
        )
    body = await _json_body(request, ReauthenticateBody)
    secret = _session_principal(request, principal)
    logins = login_counter(request)
    try:
        issued = await get_keyturn(request).auth.reauthenticate(
            secret, body.password, ip=client_ip(request), user_agent=user_agent(request)
        )
    except TooManyAttempts:
        logins.labels(outcome="throttled").inc()
        raise
    except InvalidCredentials:
        logins.labels(outcome="failure").inc()
        raise
    logins.labels(outcome="success").inc()
    response = Response(status_code=204, headers={CSRF_RESPONSE_HEADER: issued.csrf_token})
    attach_session(response, request, issued)
    return response


@router.post(
    "/token",
    openapi_extra=BEARER_OR_SESSION,
    responses=error_responses(401, 403, _200=answer("A session-bound token.", ACCESS_TOKEN)),
)
async def session_token(request: Request, principal: CurrentPrincipal) -> JSONResponse:
    """Mint a short access token for the caller's browser session: bound to the
    session (``sid`` is its handle, so it dies with it), no refresh token.
    Cookie callers only (the CSRF check has already run)."""
    if principal.via != "session":
        raise Forbidden("A session cookie is required to mint a session token.")
    keyturn = get_keyturn(request)
    validated = await keyturn.sessions.validate(_session_principal(request, principal))
    await keyturn.keys.reload_if_stale()  # sign with the newest key (see /oauth/token)
    issued = await keyturn.tokens.session_token(validated)
    body = {
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
