"""The recovery pages (#14): forgot password, set a new one, confirm an address,
and the account page's password and e-mail forms.

``/password/forgot``, ``/password/reset``, ``/verify-email`` and
``/email/confirm`` have no session (or must work without one): like sign-in they
use the login-CSRF cookie (:mod:`keyturn.web.pages.signin`) and refuse
cross-site posts. A mailed link only ever opens a form: the token is spent by
the form's POST, so a mail scanner that fetches links cannot use it up. The
account page's forms are in :mod:`keyturn.web.pages.account_mail`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from keyturn.csrf import (
    FORM_FIELD,
    allowed_origins,
    check_pre_session_csrf,
    new_pre_session_token,
)
from keyturn.errors import (
    CsrfFailed,
    EmailTaken,
    InvalidRequest,
    InvalidResetToken,
    InvalidVerificationToken,
    TooManyAttempts,
)
from keyturn.web.authn.cookies import (
    PRE_SESSION_COOKIE,
    clear_session_cookie,
    read_cookie,
    set_pre_session_cookie,
)
from keyturn.web.authn.origins import check_same_origin
from keyturn.web.dependencies import client_ip, get_keyturn
from keyturn.web.pages.common import (
    form_field,
    render_page,
)

__all__ = ["message_page", "router"]

router = APIRouter(include_in_schema=False)


TokenQuery = Annotated[str, Query(max_length=200)]
_FORM_EXPIRED = "This form has expired or was sent from another site. Please try again."
_THROTTLED = "Too many requests. Please wait a while before you try again."
_SENT = (
    "If an account uses this address, we have sent it a link to set a new password. "
    "The link works once and expires soon."
)


def _csrf_token(request: Request) -> str:
    return read_cookie(request.scope["headers"], PRE_SESSION_COOKIE) or new_pre_session_token()


def _form_page(
    request: Request,
    template: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: object,
) -> Response:
    """A page with a login-CSRF form, its cookie (re)set."""
    token = _csrf_token(request)
    response = render_page(
        request, template, status=status, headers=headers, csrf_token=token, **context
    )
    set_pre_session_cookie(response, token)
    return response


def _csrf_ok(request: Request, form: FormData) -> bool:
    try:
        check_same_origin(request.scope, allowed_origins(get_keyturn(request).settings))
        cookie = read_cookie(request.scope["headers"], PRE_SESSION_COOKIE)
        check_pre_session_csrf(cookie, form_field(form, FORM_FIELD))
    except CsrfFailed:
        return False
    return True


def message_page(
    request: Request,
    title: str,
    message: str,
    *,
    status: int = 200,
    link: tuple[str, str] = ("/login", "Sign in"),
    error: bool = False,
    headers: dict[str, str] | None = None,
) -> Response:
    return render_page(
        request,
        "recovery_message.html",
        status=status,
        headers=headers,
        title=title,
        message=message,
        link_path=link[0],
        link_text=link[1],
        error=error,
    )


# --- forgot password ----------------------------------------------------------------------


@router.get("/password/forgot", response_class=HTMLResponse)
async def forgot_form(request: Request) -> Response:
    """Ask for the account's address."""
    return _form_page(request, "password_forgot.html", error=None, email="")


@router.post("/password/forgot")
async def forgot_submit(request: Request) -> Response:
    """Queue the reset mail; the same page whatever the address."""
    form = await request.form()
    email = form_field(form, "email")[:320]
    if not _csrf_ok(request, form):
        return _form_page(
            request, "password_forgot.html", status=403, error=_FORM_EXPIRED, email=email
        )
    try:
        await get_keyturn(request).recovery.request_password_reset(email, ip=client_ip(request))
    except TooManyAttempts as exc:
        return _form_page(
            request,
            "password_forgot.html",
            status=429,
            error=_THROTTLED,
            email=email,
            headers={"Retry-After": str(exc.retry_after)},
        )
    return message_page(request, "Check your e-mail", _SENT)


# --- reset password ----------------------------------------------------------------------


@router.get("/password/reset", response_class=HTMLResponse)
async def reset_form(request: Request, token: TokenQuery = "") -> Response:
    """The new-password form for the link's token (checked on submit)."""
    return _form_page(request, "password_reset.html", token=token, error=None)


@router.post("/password/reset")
async def reset_submit(request: Request) -> Response:
    """Set the password; every session of the account ends (this browser's too)."""
    form = await request.form()
    token = form_field(form, "token")[:200]
    if not _csrf_ok(request, form):
        return _form_page(
            request, "password_reset.html", status=403, token=token, error=_FORM_EXPIRED
        )
    try:
        await get_keyturn(request).recovery.reset_password(
            token, form_field(form, "new_password"), ip=client_ip(request)
        )
    except InvalidResetToken as exc:
        return message_page(
            request,
            "This link does not work",
            exc.detail,
            status=400,
            link=("/password/forgot", "Ask for a new link"),
            error=True,
        )
    except InvalidRequest as exc:  # WeakPassword: the token is still good
        return _form_page(request, "password_reset.html", status=400, token=token, error=exc.detail)
    response = message_page(
        request,
        "Your password is set",
        "You were signed out everywhere. Sign in with your new password.",
    )
    clear_session_cookie(response)
    return response


# --- confirm an address ------------------------------------------------------------------


@router.get("/verify-email", response_class=HTMLResponse)
async def verify_form(request: Request, token: TokenQuery = "") -> Response:
    """A button that confirms the address (the link alone changes nothing)."""
    return _form_page(
        request,
        "email_token_confirm.html",
        title="Confirm your e-mail address",
        message="Press the button to confirm that this address is yours.",
        action="/verify-email",
        button="Confirm my address",
        token=token,
    )


@router.post("/verify-email")
async def verify_submit(request: Request) -> Response:
    """Mark the address verified."""
    form = await request.form()
    if not _csrf_ok(request, form):
        return message_page(request, "Please try again", _FORM_EXPIRED, status=403, error=True)
    try:
        await get_keyturn(request).recovery.verify_email(form_field(form, "token")[:200])
    except InvalidVerificationToken as exc:
        return message_page(request, "This link does not work", exc.detail, status=400, error=True)
    return message_page(
        request,
        "Address confirmed",
        "Thank you: your e-mail address is confirmed.",
        link=("/account", "Go to your account"),
    )


@router.get("/email/confirm", response_class=HTMLResponse)
async def email_change_form(request: Request, token: TokenQuery = "") -> Response:
    """A button that moves the account to the new address."""
    return _form_page(
        request,
        "email_token_confirm.html",
        title="Confirm your new e-mail address",
        message="Press the button to make this address the one of your account.",
        action="/email/confirm",
        button="Use this address",
        token=token,
    )


@router.post("/email/confirm")
async def email_change_submit(request: Request) -> Response:
    """Change the account's address (the old one gets a notice)."""
    form = await request.form()
    if not _csrf_ok(request, form):
        return message_page(request, "Please try again", _FORM_EXPIRED, status=403, error=True)
    try:
        await get_keyturn(request).recovery.confirm_email_change(form_field(form, "token")[:200])
    except (InvalidVerificationToken, EmailTaken) as exc:
        return message_page(request, "This link does not work", exc.detail, status=400, error=True)
    return message_page(
        request,
        "Address changed",
        "Your account now uses the new address.",
        link=("/account", "Go to your account"),
    )
