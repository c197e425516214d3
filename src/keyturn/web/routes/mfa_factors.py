"""The JSON API of a caller's second factors (SPEC "Multi-factor sign-in and
passkeys", #15): list them, enrol and remove TOTP, new recovery codes, add and
remove passkeys.

``GET /auth/mfa`` lists the factors. Changes need a fresh sign-in
(``--fresh-auth-window``): ``POST|DELETE /auth/mfa/totp``, ``POST
/auth/mfa/recovery-codes``, ``POST /auth/webauthn/register/options``, ``DELETE
/auth/webauthn/credentials/{id}``; ``POST /auth/mfa/totp/confirm`` and ``POST
/auth/webauthn/register`` finish what a fresh call started. Session callers
pass the CSRF gate first (the middleware), bearer callers need none.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from keyturn.clock import isoformat
from keyturn.errors import InvalidRequest, NotAuthenticated, NotFound
from keyturn.principal import Principal
from keyturn.stores.records import User
from keyturn.web.dependencies import client_ip, get_keyturn, require_principal
from keyturn.web.policy import Policy
from keyturn.web.routes.bodies import json_body
from keyturn.web.routes.mfa import NO_STORE, CodeBody, PasskeyBody
from keyturn.web.routes.openapi_docs import (
    BEARER_OR_SESSION,
    answer,
    error_responses,
    json_request,
)

__all__ = ["passkey_id", "passkey_json", "router"]

router = APIRouter(prefix="/auth", tags=["mfa"])

_MAX_NAME = 64
_OBJECT: dict[str, Any] = {"type": "object"}
_STRINGS = {"type": "array", "items": {"type": "string"}}
_RECOVERY_CODES = {
    "type": "object",
    "properties": {"recovery_codes": _STRINGS},
    "required": ["recovery_codes"],
}
_TOTP_ENROLMENT = {
    "type": "object",
    "properties": {n: {"type": "string"} for n in ("secret", "otpauth_uri", "qr_svg")},
    "required": ["secret", "otpauth_uri", "qr_svg"],
}


async def _fresh_user(request: Request) -> tuple[Principal, User]:
    """The caller, signed in within ``--fresh-auth-window`` seconds.

    Raises:
        NotAuthenticated: no caller, or the account is gone.
        InsufficientUserAuthentication: the sign-in is older than the window.
    """
    keyturn = get_keyturn(request)
    principal = Policy(fresh=keyturn.settings.fresh_auth_window).check(
        require_principal(request), now=keyturn.clock.now(), base=""
    )
    return principal, await _user(request, principal)


async def _user(request: Request, principal: Principal) -> User:
    user = await get_keyturn(request).accounts.get(principal.subject)
    if user is None or user.disabled:
        raise NotAuthenticated()
    return user


def passkey_id(text: str) -> bytes:
    """A passkey id from its base64url form (as ``GET /auth/mfa`` lists it).

    Raises:
        NotFound: not base64url (so no passkey has it).
    """
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise NotFound("No such passkey.") from None


def passkey_json(credential: Any) -> dict[str, Any]:
    """One passkey as ``GET /auth/mfa`` lists it."""
    return {
        "id": base64.urlsafe_b64encode(credential.id).decode().rstrip("="),
        "name": credential.name,
        "created_at": isoformat(credential.created_at),
        "last_used_at": (
            isoformat(credential.last_used_at) if credential.last_used_at is not None else None
        ),
        "synced": credential.backup_eligible,
    }


# --- the caller's factors ---------------------------------------------------------------


@router.get(
    "/mfa",
    openapi_extra=BEARER_OR_SESSION,
    responses=error_responses(401, _200=answer("The caller's factors.", _OBJECT)),
)
async def mfa_status(request: Request) -> JSONResponse:
    """``{"totp", "recovery_codes_left", "passkeys": [{"id","name","created_at",
    "last_used_at","synced"}]}``."""
    principal = require_principal(request)
    status = await get_keyturn(request).mfa_factors.status(principal.subject)
    return JSONResponse(
        {
            "totp": status.totp,
            "recovery_codes_left": status.recovery_codes_left,
            "passkeys": [passkey_json(item) for item in status.passkeys],
        },
        headers=NO_STORE,
    )


async def totp(request: Request) -> Response:
    """``POST``: start a TOTP enrolment (fresh sign-in): the secret, its
    ``otpauth://`` URI and a QR code as SVG, shown once; confirm with
    ``/auth/mfa/totp/confirm``. ``DELETE``: remove the TOTP factor (fresh
    sign-in), 204."""
    _, user = await _fresh_user(request)
    if request.method == "DELETE":
        await get_keyturn(request).mfa_factors.remove_totp(user, ip=client_ip(request))
        return Response(status_code=204)
    enrolment = await get_keyturn(request).mfa_factors.begin_totp(user)
    body = {
        "secret": enrolment.secret,
        "otpauth_uri": enrolment.otpauth_uri,
        "qr_svg": enrolment.qr_svg,
    }
    return JSONResponse(body, headers=NO_STORE)


# The route that answers: one for both methods, so that a 405 on this path
# lists both in ``Allow``. The two after it document each method (FastAPI gives
# one operation id per route) and are never reached.
router.add_api_route("/mfa/totp", totp, methods=["POST", "DELETE"], include_in_schema=False)
router.add_api_route(
    "/mfa/totp",
    totp,
    methods=["POST"],
    name="totp_begin",
    description="Start a TOTP enrolment (fresh sign-in): the secret, its `otpauth://` URI "
    "and a QR code as SVG, shown once; confirm with `/auth/mfa/totp/confirm`.",
    openapi_extra=BEARER_OR_SESSION,
    responses=error_responses(401, 403, _200=answer("Scan this.", _TOTP_ENROLMENT)),
)
router.add_api_route(
    "/mfa/totp",
    totp,
    methods=["DELETE"],
    name="totp_remove",
    status_code=204,
    description="Remove the TOTP factor (fresh sign-in).",
    openapi_extra=BEARER_OR_SESSION,
    responses=error_responses(401, 403, 404, _204=answer("Removed.")),
)


@router.post(
    "/mfa/totp/confirm",
    openapi_extra={**json_request(CodeBody), **BEARER_OR_SESSION},
    responses=error_responses(
        400, 401, 403, 404, 415, _200=answer("Recovery codes.", _RECOVERY_CODES)
    ),
)
async def totp_confirm(request: Request) -> JSONResponse:
    """Activate the pending TOTP secret with its first code: 10 recovery codes, once."""
    principal = require_principal(request)
    user = await _user(request, principal)
    body = await json_body(request, CodeBody)
    codes = await get_keyturn(request).mfa_factors.confirm_totp(
        user, body.code, ip=client_ip(request)
    )
    return JSONResponse({"recovery_codes": codes}, headers=NO_STORE)


@router.post(
    "/mfa/recovery-codes",
    openapi_extra=BEARER_OR_SESSION,
    responses=error_responses(400, 401, 403, _200=answer("Recovery codes.", _RECOVERY_CODES)),
)
async def recovery_codes(request: Request) -> JSONResponse:
    """A new set of 10 recovery codes (fresh sign-in); the old set stops working."""
    _, user = await _fresh_user(request)
    codes = await get_keyturn(request).mfa_factors.regenerate_recovery_codes(
        user, ip=client_ip(request)
    )
    return JSONResponse({"recovery_codes": codes}, headers=NO_STORE)


@router.post(
    "/webauthn/register/options",
    openapi_extra=BEARER_OR_SESSION,
    responses=error_responses(401, 403, _200=answer("Creation options.", _OBJECT)),
)
async def passkey_register_options(request: Request) -> JSONResponse:
    """Creation options for a new passkey (fresh sign-in)."""
    _, user = await _fresh_user(request)
    options = await get_keyturn(request).mfa_factors.passkey_registration_options(user)
    return JSONResponse(options, headers=NO_STORE)


@router.post(
    "/webauthn/register",
    status_code=201,
    openapi_extra={**json_request(PasskeyBody), **BEARER_OR_SESSION},
    responses=error_responses(400, 401, 403, 415, _201=answer("Added.", _OBJECT)),
)
async def passkey_register(request: Request) -> JSONResponse:
    """Add the passkey a ``create()`` made from this caller's options: 201 with it."""
    principal = require_principal(request)
    user = await _user(request, principal)
    body = await json_body(request, PasskeyBody)
    name = body.name.strip()[:_MAX_NAME] or "Passkey"
    if any(ord(char) < 0x20 for char in name):
        raise InvalidRequest("The passkey name has control characters.")
    credential = await get_keyturn(request).mfa_factors.register_passkey(
        user, json.dumps(body.credential), name=name, ip=client_ip(request)
    )
    return JSONResponse(passkey_json(credential), status_code=201, headers=NO_STORE)


@router.delete(
    "/webauthn/credentials/{credential_id}",
    status_code=204,
    openapi_extra=BEARER_OR_SESSION,
    responses=error_responses(401, 403, 404, _204=answer("Removed.")),
)
async def passkey_remove(request: Request, credential_id: str) -> Response:
    """Remove one of the caller's passkeys (fresh sign-in)."""
    _, user = await _fresh_user(request)
    await get_keyturn(request).mfa_factors.remove_passkey(
        user, passkey_id(credential_id), ip=client_ip(request)
    )
    return Response(status_code=204)
