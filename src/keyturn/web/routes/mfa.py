"""The JSON API of multi-factor sign-in and passkeys (SPEC "Multi-factor sign-in
and passkeys", #15).

- ``POST /auth/login/mfa`` finishes a two-step sign-in (``mfa_token`` plus one
  of ``code``, ``recovery_code``, ``webauthn``); ``POST /auth/login/mfa/options``
  gives the WebAuthn request options for a passkey as the second factor.
- ``POST /auth/webauthn/login/options`` and ``POST /auth/webauthn/login``: a
  passwordless sign-in with a discoverable passkey.
- The caller's own factors: :mod:`keyturn.web.routes.mfa_factors`.

The sign-in endpoints have no session yet: they are exempt from the session
CSRF gate and check the origin themselves, and JSON bodies cannot be sent
cross-site without a CORS preflight. Options are the JSON that
``PublicKeyCredential.parseCreationOptionsFromJSON`` /
``parseRequestOptionsFromJSON`` read; results are ``PublicKeyCredential.toJSON()``.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import StrictStr

from keyturn.csrf import allowed_origins
from keyturn.errors import NotAuthenticated
from keyturn.stores.records import User
from keyturn.web.authn.origins import check_same_origin
from keyturn.web.dependencies import (
    client_ip,
    get_keyturn,
    session_secret,
    user_agent,
)
from keyturn.web.routes.bodies import _Strict, json_body
from keyturn.web.routes.openapi_docs import (
    SIGNED_IN,
    answer,
    error_responses,
    json_request,
)
from keyturn.web.routes.signin import attach_session, client_binding, finish_sign_in

__all__ = ["MFA_PENDING", "router", "signed_in_answer"]

router = APIRouter(prefix="/auth", tags=["mfa"])

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_MAX_NAME = 64
_OBJECT: dict[str, Any] = {"type": "object"}
_STRINGS = {"type": "array", "items": {"type": "string"}}

#: The answer of a correct password for a user with a second factor.
MFA_PENDING: dict[str, Any] = {
    "type": "object",
    "properties": {
        "mfa_required": {"const": True},
        "mfa_token": {"type": "string"},
        "methods": _STRINGS,
        "expires_in": {"type": "integer"},
    },
    "required": ["mfa_required", "mfa_token", "methods"],
}


class MfaLoginBody(_Strict):
    """``POST /auth/login/mfa``: the token and exactly one second factor."""

    mfa_token: StrictStr
    code: StrictStr | None = None
    recovery_code: StrictStr | None = None
    webauthn: dict[str, Any] | StrictStr | None = None


class MfaTokenBody(_Strict):
    """``POST /auth/login/mfa/options``."""

    mfa_token: StrictStr


class CodeBody(_Strict):
    """``POST /auth/mfa/totp/confirm``."""

    code: StrictStr


class PasskeyBody(_Strict):
    """``POST /auth/webauthn/register`` and ``/auth/webauthn/login``: the
    ``toJSON()`` result under ``credential`` (and a name for a new passkey)."""

    credential: dict[str, Any]
    name: StrictStr = "Passkey"


def _same_origin(request: Request) -> None:
    check_same_origin(request.scope, allowed_origins(get_keyturn(request).settings))


def signed_in_answer(request: Request, user: User, csrf_token: str) -> dict[str, Any]:
    """The body of a finished sign-in (the same as ``POST /auth/login``)."""
    del request
    return {
        "user": {"id": user.id, "email": user.email, "roles": list(user.roles)},
        "csrf_token": csrf_token,
    }


# --- the second step and passkey sign-in ------------------------------------------------


@router.post(
    "/login/mfa",
    openapi_extra=json_request(MfaLoginBody),
    responses=error_responses(400, 401, 403, 415, 429, _200=answer("Signed in.", SIGNED_IN)),
)
async def login_mfa(request: Request) -> JSONResponse:
    """Finish a two-step sign-in: the normal sign-in answer and the session cookie."""
    _same_origin(request)
    body = await json_body(request, MfaLoginBody)
    webauthn = json.dumps(body.webauthn) if isinstance(body.webauthn, dict) else body.webauthn
    outcome = await finish_sign_in(
        request, body.mfa_token, code=body.code, recovery_code=body.recovery_code, webauthn=webauthn
    )
    if outcome.session is None:  # unreachable: a finished sign-in has a session
        raise NotAuthenticated()
    response = JSONResponse(signed_in_answer(request, outcome.user, outcome.session.csrf_token))
    attach_session(response, request, outcome.session)
    return response


@router.post(
    "/login/mfa/options",
    openapi_extra=json_request(MfaTokenBody),
    responses=error_responses(400, 401, 403, 415, _200=answer("Request options.", _OBJECT)),
)
async def login_mfa_options(request: Request) -> JSONResponse:
    """WebAuthn request options for a passkey as the second factor of ``mfa_token``."""
    _same_origin(request)
    body = await json_body(request, MfaTokenBody)
    options = await get_keyturn(request).mfa_auth.second_factor_options(
        body.mfa_token, client_binding=client_binding(request)
    )
    return JSONResponse(options, headers=NO_STORE)


@router.post(
    "/webauthn/login/options",
    responses=error_responses(403, _200=answer("Request options.", _OBJECT)),
)
async def passkey_login_options(request: Request) -> JSONResponse:
    """Request options for a passwordless sign-in with a discoverable passkey."""
    _same_origin(request)
    options = await get_keyturn(request).mfa_auth.passwordless_options()
    return JSONResponse(options, headers=NO_STORE)


@router.post(
    "/webauthn/login",
    openapi_extra=json_request(PasskeyBody),
    responses=error_responses(400, 401, 403, 415, _200=answer("Signed in.", SIGNED_IN)),
)
async def passkey_login(request: Request) -> JSONResponse:
    """Sign in with a passkey alone (user verification required): the normal
    sign-in answer and the session cookie; ``amr`` is ``hwk``/``swk`` and ``mfa``."""
    _same_origin(request)
    body = await json_body(request, PasskeyBody)
    outcome = await get_keyturn(request).mfa_auth.passwordless(
        json.dumps(body.credential),
        ip=client_ip(request),
        user_agent=user_agent(request),
        replaces_secret=session_secret(request),
    )
    if outcome.session is None:  # unreachable
        raise NotAuthenticated()
    response = JSONResponse(signed_in_answer(request, outcome.user, outcome.session.csrf_token))
    attach_session(response, request, outcome.session)
    return response
