"""The JSON auth API for sessions (SPEC "JSON auth API"): ``/auth/*``.

(Over 300 lines: the JSON auth API's endpoints, each with the OpenAPI
description of every answer it gives; its bodies, the shared sign-in and the
sign-ins list are modules of their own.)

Bodies are JSON and only JSON (:mod:`keyturn.web.routes.bodies`): any other
``Content-Type`` is 415 ``unsupported_media_type`` before the body is read, so a
cross-site HTML form or a "simple" ``fetch`` (``text/plain``) can never reach
these endpoints (SEC-29).
The session secret travels only in the ``Set-Cookie`` header; bodies carry the
public handle and the CSRF token, never the secret.

CSRF for cookie-authenticated calls is enforced before these handlers run, by
:class:`~keyturn.web.authn.middleware.AuthnMiddleware`; sign-in and registration add the
content-type rule and :func:`~keyturn.web.authn.origins.check_same_origin` themselves.

Every endpoint that needs a caller takes either credential: a session cookie or
an access token (``Authorization: Bearer``, no CSRF token needed). A token
caller's sign-in is its ``sid``: the refresh family (or, for a token minted by
``POST /auth/token``, the browser session) it belongs to.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from keyturn import csrf
from keyturn.csrf import allowed_origins
from keyturn.errors import (
    Forbidden,
    InvalidCredentials,
    InvalidRequest,
    InvalidToken,
    NotAuthenticated,
    TooManyAttempts,
)
from keyturn.principal import Principal
from keyturn.web.authn.cookies import (
    clear_refresh_cookie,
    clear_session_cookie,
    refresh_cookie_path,
)
from keyturn.web.authn.origins import check_same_origin
from keyturn.web.authn.scope import TOKEN_CLAIMS_KEY
from keyturn.web.dependencies import (
    CurrentPrincipal,
    client_ip,
    get_keyturn,
    login_counter,
    require_principal,
    session_secret,
    user_agent,
)
from keyturn.web.routes.bodies import (
    Credentials,
    LoginBody,
    PasswordChangeBody,
    ReauthenticateBody,
    json_body,
)
from keyturn.web.routes.mfa import MFA_PENDING
from keyturn.web.routes.openapi_docs import (
    ACCESS_TOKEN,
    BEARER_OR_SESSION,
    REGISTERED,
    SIGNED_IN,
    WHOAMI,
    answer,
    error_responses,
    json_request,
)
from keyturn.web.routes.signin import attach_pending, attach_session, pending_answer, sign_in
from keyturn.web.routes.whoami import whoami_answer

if TYPE_CHECKING:
    from keyturn.tokens.claims import AccessTokenClaims

router = APIRouter(prefix="/auth", tags=["auth"])

CSRF_RESPONSE_HEADER = csrf.HEADER
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

# --- helpers ---------------------------------------------------------------------------


def _require_same_origin(request: Request) -> None:
    check_same_origin(request.scope, allowed_origins(get_keyturn(request).settings))


def _session_secret_of(request: Request, principal: Principal) -> str:
    """The caller's session secret (the cookie credential, never shown to anyone).

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


# --- endpoints ------------------------------------------------------------------------


# Routes are matched in the order they are declared, and each failed match costs
# a few microseconds in FastAPI's router: the hottest route comes first.
@router.get(
    "/whoami",
    openapi_extra=BEARER_OR_SESSION,
    responses=error_responses(401, _200=answer("The caller.", WHOAMI)),
)
async def whoami(request: Request) -> Response:
    """Who the caller is; cookie callers also get their CSRF token in a header,
    so a reloaded single-page app can recover it without a new sign-in. For a
    token caller ``session_id`` is the token's ``sid`` and ``expires_at`` its
    ``exp``. A signed-in ``GET`` is answered by the middleware before it gets here
    (:mod:`keyturn.web.routes.whoami`), with the same bytes."""
    # No Depends(): FastAPI's dependency solving cost more than the whole
    # credential check on this, the most frequent authenticated call.
    require_principal(request)
    answer = whoami_answer(request.scope)
    if answer is None:
        raise InvalidToken("no_claims")
    content, headers = answer
    response = Response(content)
    response.raw_headers = list(headers)
    return response


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
    body = await json_body(request, Credentials)
    user = await get_keyturn(request).auth.register(
        body.email, body.password, ip=client_ip(request), user_agent=user_agent(request)
    )
    return JSONResponse({"id": user.id, "email": user.email}, status_code=201)


@router.post(
    "/login",
    openapi_extra=json_request(LoginBody),
    responses=error_responses(
        400,
        401,
        403,
        415,
        429,
        _200=answer(
            "Signed in (the cookie is set), or a second factor is needed (no cookie).",
            {"anyOf": [SIGNED_IN, MFA_PENDING]},
        ),
    ),
)
async def login(request: Request) -> JSONResponse:
    """Sign in: the session cookie, and the user plus the CSRF token in the body.
    A user with a second factor gets ``{"mfa_required": true, "mfa_token",
    "methods"}`` and no session instead; ``POST /auth/login/mfa`` finishes."""
    _require_same_origin(request)
    body = await json_body(request, LoginBody)
    outcome, binding = await sign_in(request, body.email, body.password, remember=body.remember)
    if outcome.pending is not None:
        now = get_keyturn(request).clock.now()
        pending = JSONResponse(pending_answer(outcome.pending, now), headers=NO_STORE)
        attach_pending(pending, request, binding)
        return pending
    user, issued = outcome.user, outcome.session
    if issued is None:  # unreachable: without a pending step there is a session
        raise NotAuthenticated()
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
        await get_keyturn(request).token_revoker.sign_out(_token_claims(request))
        response = Response(status_code=204)
        if spa:  # SPA mode: drop the dead cookie
            clear_refresh_cookie(response, path=refresh_cookie_path(request.scope, "/auth/logout"))
        return response
    secret = _session_secret_of(request, principal)
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
    await get_keyturn(request).auth.sign_out_everywhere(principal.subject, ip=client_ip(request))
    response = Response(status_code=204)
    if principal.via == "session":
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
    body = await json_body(request, PasswordChangeBody)
    keyturn = get_keyturn(request)
    if principal.via == "token":
        claims = _token_claims(request)
        await keyturn.auth.change_password_for_token(
            claims.sub,
            claims.sid,
            body.current_password,
            body.new_password,
            ip=client_ip(request),
        )
        await keyturn.mfa_auth.end_pending_sign_ins(claims.sub)  # mfa (wave 2)
        return Response(status_code=204)
    secret = _session_secret_of(request, principal)
    issued = await keyturn.auth.change_password(
        secret, body.current_password, body.new_password, ip=client_ip(request)
    )
    # mfa (wave 2): an mfa_token earned with the old password cannot be finished.
    await keyturn.mfa_auth.end_pending_sign_ins(principal.subject)
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
    body = await json_body(request, ReauthenticateBody)
    secret = _session_secret_of(request, principal)
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
    validated = await keyturn.sessions.validate(_session_secret_of(request, principal))
    await keyturn.keys.reload_if_stale()  # sign with the newest key (see /oauth/token)
    issued = await keyturn.grants.session_token(validated)
    body = {
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
