"""The two-step verification section of ``/account`` and its forms (#15).

``/account`` shows the authenticator app (on or off), how many recovery codes
are left, and the passkeys (name, added, last used), each with a remove button
(:func:`mfa_section`, rendered by ``_mfa.html``). Every change needs a fresh
sign-in (``--fresh-auth-window``): a stale session gets the "confirm your
password" form first (``POST /account/reauthenticate``). Adding a passkey runs
in ``/static/keyturn-webauthn.js`` against the JSON API. CSRF: the forms carry
the session's ``csrf_token``, checked by the middleware before these routes run.
"""

from __future__ import annotations

import base64
import contextlib
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from keyturn.clock import to_datetime
from keyturn.csrf import session_csrf_token
from keyturn.errors import (
    InvalidCredentials,
    InvalidMfaCode,
    InvalidRequest,
    NotFound,
    TooManyAttempts,
)
from keyturn.principal import Principal
from keyturn.stores.records import User
from keyturn.web.dependencies import (
    OptionalPrincipal,
    client_ip,
    get_keyturn,
    session_secret,
    user_agent,
)
from keyturn.web.pages.common import (
    ACCOUNT,
    form_field,
    redirect_to,
    redirect_to_login,
    render_page,
)
from keyturn.web.routes.mfa_factors import passkey_id
from keyturn.web.routes.signin import attach_session

__all__ = ["mfa_section", "router"]

router = APIRouter(include_in_schema=False)


def _when(timestamp: float | None) -> str:
    return "never" if timestamp is None else to_datetime(timestamp).strftime("%Y-%m-%d %H:%M UTC")


def _is_fresh(request: Request, principal: Principal) -> bool:
    keyturn = get_keyturn(request)
    auth_time = principal.auth_time
    return auth_time is not None and (
        keyturn.clock.now() - auth_time <= keyturn.settings.fresh_auth_window
    )


async def mfa_section(request: Request, principal: Principal) -> dict[str, Any]:
    """What ``_mfa.html`` shows for the caller."""
    status = await get_keyturn(request).mfa_factors.status(principal.subject)
    return {
        "totp": status.totp,
        "enabled": status.enabled,
        "recovery_codes_left": status.recovery_codes_left,
        "fresh": _is_fresh(request, principal),
        "multi_factor": "mfa" in principal.amr,
        "passkeys": [
            {
                "id": base64.urlsafe_b64encode(item.id).decode().rstrip("="),
                "name": item.name,
                "created": _when(item.created_at),
                "last_used": _when(item.last_used_at),
            }
            for item in status.passkeys
        ],
    }


async def _caller(
    request: Request, principal: Principal | None
) -> tuple[Principal, User, str] | None:
    secret = session_secret(request)
    if principal is None or principal.via != "session" or secret is None:
        return None
    user = await get_keyturn(request).accounts.get(principal.subject)
    if user is None:
        return None
    return principal, user, secret


def _confirm_password_page(
    request: Request, secret: str, *, error: str | None = None, status: int = 200
) -> HTMLResponse:
    return render_page(
        request,
        "mfa_reauthenticate.html",
        status=status,
        csrf_token=session_csrf_token(secret),
        error=error,
    )


def _message(request: Request, title: str, message: str, status: int = 400) -> HTMLResponse:
    return render_page(request, "message.html", status=status, title=title, message=message)


def _codes_page(request: Request, secret: str, codes: list[str]) -> HTMLResponse:
    return render_page(
        request,
        "mfa_recovery_codes.html",
        headers={"Cache-Control": "no-store"},
        codes=codes,
        csrf_token=session_csrf_token(secret),
    )


@router.post("/account/reauthenticate")
async def account_reauthenticate(request: Request, principal: OptionalPrincipal) -> Response:
    """Confirm the password: the session's sign-in time becomes now, new session ID."""
    caller = await _caller(request, principal)
    if caller is None:
        return redirect_to_login(request)
    _, _, secret = caller
    form = await request.form()
    try:
        issued = await get_keyturn(request).auth.reauthenticate(
            secret,
            form_field(form, "password"),
            ip=client_ip(request),
            user_agent=user_agent(request),
        )
    except InvalidCredentials:
        return _confirm_password_page(
            request, secret, error="That password is not right.", status=401
        )
    except TooManyAttempts:
        return _confirm_password_page(
            request, secret, error="Too many failed attempts. Please wait.", status=429
        )
    response = redirect_to(request, ACCOUNT)
    attach_session(response, request, issued)
    return response


@router.post("/account/mfa/totp")
async def account_totp_begin(request: Request, principal: OptionalPrincipal) -> Response:
    """Show a new TOTP secret as a QR code, with the form to confirm its first code."""
    caller = await _caller(request, principal)
    if caller is None:
        return redirect_to_login(request)
    who, user, secret = caller
    if not _is_fresh(request, who):
        return _confirm_password_page(request, secret)
    enrolment = await get_keyturn(request).mfa_factors.begin_totp(user)
    return render_page(
        request,
        "mfa_totp_setup.html",
        headers={"Cache-Control": "no-store"},
        qr_svg=enrolment.qr_svg,
        secret=enrolment.secret,
        csrf_token=session_csrf_token(secret),
    )


@router.post("/account/mfa/totp/confirm")
async def account_totp_confirm(request: Request, principal: OptionalPrincipal) -> Response:
    """Activate the new secret with its first code and show the recovery codes."""
    caller = await _caller(request, principal)
    if caller is None:
        return redirect_to_login(request)
    _, user, secret = caller
    form = await request.form()
    try:
        codes = await get_keyturn(request).mfa_factors.confirm_totp(
            user, form_field(form, "code"), ip=client_ip(request)
        )
    except InvalidMfaCode:
        return _message(
            request,
            "That code is not right",
            "The code did not match. Set up the authenticator app again from your account.",
            status=401,
        )
    except NotFound:
        return _message(request, "Start again", "This set-up has expired.", status=404)
    return _codes_page(request, secret, codes)


@router.post("/account/mfa/totp/remove")
async def account_totp_remove(request: Request, principal: OptionalPrincipal) -> Response:
    """Turn the authenticator app off."""
    caller = await _caller(request, principal)
    if caller is None:
        return redirect_to_login(request)
    who, user, secret = caller
    if not _is_fresh(request, who):
        return _confirm_password_page(request, secret)
    with contextlib.suppress(NotFound):  # already off: the account page says so
        await get_keyturn(request).mfa_factors.remove_totp(user, ip=client_ip(request))
    return redirect_to(request, ACCOUNT)


@router.post("/account/mfa/recovery-codes")
async def account_recovery_codes(request: Request, principal: OptionalPrincipal) -> Response:
    """Issue a new set of recovery codes (the old set stops working) and show it."""
    caller = await _caller(request, principal)
    if caller is None:
        return redirect_to_login(request)
    who, user, secret = caller
    if not _is_fresh(request, who):
        return _confirm_password_page(request, secret)
    try:
        codes = await get_keyturn(request).mfa_factors.regenerate_recovery_codes(
            user, ip=client_ip(request)
        )
    except InvalidRequest as exc:
        return _message(request, "No second factor", exc.detail)
    return _codes_page(request, secret, codes)


@router.post("/account/mfa/passkeys/{credential_id}/remove")
async def account_passkey_remove(
    request: Request, credential_id: str, principal: OptionalPrincipal
) -> Response:
    """Remove one of the caller's passkeys."""
    caller = await _caller(request, principal)
    if caller is None:
        return redirect_to_login(request)
    who, user, secret = caller
    if not _is_fresh(request, who):
        return _confirm_password_page(request, secret)
    try:
        await get_keyturn(request).mfa_factors.remove_passkey(
            user, passkey_id(credential_id), ip=client_ip(request)
        )
    except NotFound:
        return _message(request, "Not found", "That passkey does not exist.", status=404)
    return redirect_to(request, ACCOUNT)
