"""The account page's password and e-mail forms (#14): ``/account/password``,
``/account/email`` and ``/account/email/verify/resend``.

Browser sessions only; the forms carry the session's CSRF token in
``csrf_token``, checked by :class:`~keyturn.web.authn.middleware.AuthnMiddleware`
before these routes run. Every form works without JavaScript: each answer is a
redirect back to the account page or a page that says what happened.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from keyturn.errors import InvalidCredentials, InvalidRequest, TooManyAttempts
from keyturn.web.dependencies import OptionalPrincipal, client_ip, get_keyturn, session_secret
from keyturn.web.pages.common import ACCOUNT, form_field, redirect_to, redirect_to_login
from keyturn.web.pages.recovery import message_page
from keyturn.web.routes.signin import attach_session

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _account_error(request: Request, exc: Exception, status: int) -> Response:
    detail = getattr(exc, "detail", "That did not work.")
    headers = None
    if isinstance(exc, TooManyAttempts):
        headers = {"Retry-After": str(exc.retry_after)}
    return message_page(
        request,
        "That did not work",
        detail,
        status=status,
        link=(ACCOUNT, "Back to your account"),
        error=True,
        headers=headers,
    )


@router.post("/account/password")
async def account_password(request: Request, principal: OptionalPrincipal) -> Response:
    """Change the password: this session gets a new ID, every other sign-in ends."""
    secret = session_secret(request) if principal and principal.via == "session" else None
    if principal is None or secret is None:
        return redirect_to_login(request)
    form = await request.form()
    try:
        issued = await get_keyturn(request).auth.change_password(
            secret,
            form_field(form, "current_password"),
            form_field(form, "new_password"),
            ip=client_ip(request),
        )
    except TooManyAttempts as exc:
        return _account_error(request, exc, 429)
    except InvalidCredentials as exc:
        return _account_error(request, exc, 401)
    except InvalidRequest as exc:  # WeakPassword
        return _account_error(request, exc, 400)
    response = redirect_to(request, ACCOUNT)
    attach_session(response, request, issued)
    return response


@router.post("/account/email")
async def account_email(request: Request, principal: OptionalPrincipal) -> Response:
    """Mail a confirmation link to the new address."""
    if principal is None or principal.via != "session":
        return redirect_to_login(request)
    form = await request.form()
    try:
        await get_keyturn(request).recovery.request_email_change(
            principal.subject,
            form_field(form, "new_email"),
            form_field(form, "current_password"),
            ip=client_ip(request),
        )
    except TooManyAttempts as exc:
        return _account_error(request, exc, 429)
    except InvalidCredentials as exc:
        return _account_error(request, exc, 401)
    except InvalidRequest as exc:  # InvalidEmail, the same address
        return _account_error(request, exc, 400)
    return message_page(
        request,
        "Check your new mailbox",
        "We sent a link to the new address. Your address changes when you follow it.",
        link=(ACCOUNT, "Back to your account"),
    )


@router.post("/account/email/verify/resend")
async def account_resend(request: Request, principal: OptionalPrincipal) -> Response:
    """Send the confirmation link again."""
    if principal is None or principal.via != "session":
        return redirect_to_login(request)
    try:
        await get_keyturn(request).recovery.resend_verification(
            principal.subject, ip=client_ip(request)
        )
    except TooManyAttempts as exc:
        return _account_error(request, exc, 429)
    return message_page(
        request,
        "Check your e-mail",
        "We sent the confirmation link again.",
        link=(ACCOUNT, "Back to your account"),
    )
