"""The JSON API of account recovery (SPEC "E-mail and account recovery", #14).

``POST /auth/password/forgot`` and ``/auth/password/reset``, ``POST
/auth/email/verify`` and ``/auth/email/verify/resend``, ``POST /auth/email``
(change) and ``/auth/email/confirm``. Bodies are JSON only (415 otherwise), and
the endpoints a browser reaches without a session (forgot, reset, verify,
confirm) refuse cross-site requests themselves; they are exempt from the
session CSRF gate like sign-in, since they carry their own proof (a link
token) or change nothing an attacker could use. A 202 means queued: mail goes
out from the outbox, never inside the request.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StrictStr

from keyturn.csrf import allowed_origins
from keyturn.web.authn.origins import check_same_origin
from keyturn.web.dependencies import CurrentPrincipal, client_ip, get_keyturn
from keyturn.web.routes.bodies import json_body
from keyturn.web.routes.openapi_docs import (
    BEARER_OR_SESSION,
    answer,
    error_responses,
    json_request,
)

__all__ = ["ACCEPTED_BODY", "RECOVERY_API_PATHS", "RECOVERY_PATHS", "router"]

router = APIRouter(prefix="/auth", tags=["recovery"])

#: The one answer of a forgot-password request, whatever the address.
ACCEPTED_BODY = {
    "status": "accepted",
    "detail": "If an account uses this address, a message with a link is on its way.",
}
_ACCEPTED_SCHEMA = {
    "type": "object",
    "properties": {"status": {"type": "string"}, "detail": {"type": "string"}},
    "required": ["status", "detail"],
}

#: Reached without a session; they check the origin themselves.
RECOVERY_API_PATHS: tuple[str, ...] = (
    "/auth/password/forgot",
    "/auth/password/reset",
    "/auth/email/verify",
    "/auth/email/confirm",
)
#: The same for the pages (``keyturn.web.pages.recovery``, login CSRF): every path
#: of account recovery exempt from the session CSRF gate.
RECOVERY_PATHS: tuple[str, ...] = (
    *RECOVERY_API_PATHS,
    "/password/forgot",
    "/password/reset",
    "/verify-email",
    "/email/confirm",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class ForgotBody(_Strict):
    """``POST /auth/password/forgot``."""

    email: StrictStr


class ResetBody(_Strict):
    """``POST /auth/password/reset``."""

    token: StrictStr
    new_password: StrictStr


class TokenBody(_Strict):
    """``POST /auth/email/verify`` and ``/auth/email/confirm``."""

    token: StrictStr


class EmailChangeBody(_Strict):
    """``POST /auth/email``."""

    new_email: StrictStr
    current_password: StrictStr


def _same_origin(request: Request) -> None:
    check_same_origin(request.scope, allowed_origins(get_keyturn(request).settings))


def _accepted() -> JSONResponse:
    return JSONResponse(ACCEPTED_BODY, status_code=202)


@router.post(
    "/password/forgot",
    status_code=202,
    openapi_extra=json_request(ForgotBody),
    responses=error_responses(
        400,
        403,
        415,
        429,
        _202=answer("Queued (whether or not the account exists).", _ACCEPTED_SCHEMA),
    ),
)
async def forgot_password(request: Request) -> JSONResponse:
    """Ask for a reset link: always the same 202, in the same time. Throttled per
    address and per client (429 ``too_many_attempts``)."""
    _same_origin(request)
    body = await json_body(request, ForgotBody)
    await get_keyturn(request).recovery.request_password_reset(body.email, ip=client_ip(request))
    return _accepted()


@router.post(
    "/password/reset",
    status_code=204,
    openapi_extra=json_request(ResetBody),
    responses=error_responses(400, 403, 415, _204=answer("Password set; every sign-in ended.")),
)
async def reset_password(request: Request) -> Response:
    """Set a new password with the mailed token: ends every session, refresh
    family and access token of the user. 400 ``invalid_reset_token`` for a bad,
    used, expired or superseded token; 400 ``weak_password`` leaves it usable."""
    _same_origin(request)
    body = await json_body(request, ResetBody)
    await get_keyturn(request).recovery.reset_password(
        body.token, body.new_password, ip=client_ip(request)
    )
    return Response(status_code=204)


@router.post(
    "/email/verify",
    status_code=204,
    openapi_extra=json_request(TokenBody),
    responses=error_responses(400, 403, 415, _204=answer("The address is verified.")),
)
async def verify_email(request: Request) -> Response:
    """Confirm the account's address with the mailed token (400
    ``invalid_verification_token`` otherwise)."""
    _same_origin(request)
    body = await json_body(request, TokenBody)
    await get_keyturn(request).recovery.verify_email(body.token)
    return Response(status_code=204)


@router.post(
    "/email/verify/resend",
    status_code=202,
    openapi_extra=BEARER_OR_SESSION,
    responses=error_responses(401, 403, 429, _202=answer("Queued.", _ACCEPTED_SCHEMA)),
)
async def resend_verification(request: Request, principal: CurrentPrincipal) -> JSONResponse:
    """Send the caller's verification mail again (nothing when already verified)."""
    await get_keyturn(request).recovery.resend_verification(
        principal.subject, ip=client_ip(request)
    )
    return _accepted()


@router.post(
    "/email",
    status_code=202,
    openapi_extra={**json_request(EmailChangeBody), **BEARER_OR_SESSION},
    responses=error_responses(
        400, 401, 403, 415, 429, _202=answer("Confirmation mailed.", _ACCEPTED_SCHEMA)
    ),
)
async def change_email(request: Request, principal: CurrentPrincipal) -> JSONResponse:
    """Start an e-mail change: the current password, then a link to the new
    address; the change happens when it is followed (the old address is told)."""
    body = await json_body(request, EmailChangeBody)
    await get_keyturn(request).recovery.request_email_change(
        principal.subject, body.new_email, body.current_password, ip=client_ip(request)
    )
    return _accepted()


@router.post(
    "/email/confirm",
    status_code=204,
    openapi_extra=json_request(TokenBody),
    responses=error_responses(400, 403, 409, 415, _204=answer("The address is changed.")),
)
async def confirm_email_change(request: Request) -> Response:
    """Finish an e-mail change with the token mailed to the new address."""
    _same_origin(request)
    body = await json_body(request, TokenBody)
    await get_keyturn(request).recovery.confirm_email_change(body.token)
    return Response(status_code=204)
