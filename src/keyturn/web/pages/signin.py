"""The sign-in and registration pages (``/login``, ``/register``).

Login CSRF (SEC-30): these forms have no session yet. GET sets a random
``__Host-keyturn_csrf`` cookie (``SameSite=Strict``) and puts the same value in
the form; POST requires both to match and the request not to be cross-site.
The cookie is dropped once signed in. After signing in, the browser goes to
``?next=`` when it is a same-origin path (:func:`safe_next`), else the account.
"""

from __future__ import annotations

import urllib.parse
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
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
    Forbidden,
    InvalidCredentials,
    InvalidRequest,
    TooManyAttempts,
)
from keyturn.web.authn.cookies import PRE_SESSION_COOKIE, read_cookie, set_pre_session_cookie
from keyturn.web.authn.origins import check_same_origin
from keyturn.web.dependencies import client_ip, get_keyturn, user_agent
from keyturn.web.pages.common import ACCOUNT, base_path, form_field, not_found_page, render_page
from keyturn.web.pages.redirect_csp import csp_for_next
from keyturn.web.pages.second_step import second_step_page
from keyturn.web.routes.signin import attach_pending, attach_session, sign_in

router = APIRouter(include_in_schema=False)

#: ``?next=/somewhere``: where to go after signing in (see :func:`safe_next`).
NextQuery = Annotated[str | None, Query(alias="next")]
#: ``?login_hint=a@example.com``: the address an OAuth client expects (prefilled).
LoginHintQuery = Annotated[str | None, Query()]

#: The one message for an unknown address, a wrong password and a disabled account.
SIGN_IN_FAILED = InvalidCredentials.default_detail
THROTTLED = "Too many failed attempts. Please wait a while before you try again."
REGISTER_THROTTLED = "Too many registrations. Please wait a while before you try again."
FORM_EXPIRED = "This form has expired or was sent from another site. Please try again."


#: An authorization request coming back from sign-in may be long (state, nonce).
_MAX_NEXT = 8192


def safe_next(value: str | None) -> str | None:
    """``value`` if it is a same-origin relative path to send the user to, else None.

    Accepted: a path starting with exactly one ``/``. Refused: ``//host`` and
    ``/\\host`` (browsers read both as another host), anything with a scheme or
    host, backslashes, control characters (browsers drop tabs and newlines, so
    ``/\\t/host`` would become ``//host``), and very long values.
    """
    if not value or len(value) > _MAX_NEXT or not value.startswith("/"):
        return None
    if value.startswith("//") or "\\" in value:
        return None
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        return None
    parts = urllib.parse.urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


def _pre_session_token(request: Request) -> str:
    """The login-CSRF token this browser already holds, or a new one."""
    return read_cookie(request.scope["headers"], PRE_SESSION_COOKIE) or new_pre_session_token()


def _check_login_csrf(request: Request, form: FormData) -> None:
    """Login CSRF (SEC-30): not cross-site, and the form's token equals the cookie's.

    Raises:
        CsrfFailed: either half fails.
    """
    check_same_origin(request.scope, allowed_origins(get_keyturn(request).settings))
    cookie = read_cookie(request.scope["headers"], PRE_SESSION_COOKIE)
    check_pre_session_csrf(cookie, form_field(form, FORM_FIELD))


def _credentials_page(
    request: Request,
    template: str,
    *,
    status: int = 200,
    error: str | None = None,
    email: str = "",
    next_path: str | None = None,
    remember: bool = False,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """The sign-in or registration form, with its login-CSRF cookie (re)set."""
    token = _pre_session_token(request)
    csp = csp_for_next(base_path(request), safe_next(next_path))
    if csp is not None:  # the answer redirects to an OAuth client (#12)
        headers = {**(headers or {}), "Content-Security-Policy": csp}
    response = render_page(
        request,
        template,
        status=status,
        headers=headers,
        csrf_token=token,
        error=error,
        email=email[:320],
        next=safe_next(next_path) or "",
        remember=remember,
    )
    set_pre_session_cookie(response, token)
    return response


async def _signed_in(
    request: Request, email: str, password: str, *, remember: bool, template: str, next_path: str
) -> Response:
    """Sign in and redirect, or the form again with the one generic message.
    A user with a second factor gets the ``/login/mfa`` form instead (#15)."""
    try:
        outcome, binding = await sign_in(
            request, email, password, remember=remember, next_path=safe_next(next_path)
        )
    except InvalidCredentials:
        return _credentials_page(
            request,
            template,
            status=401,
            error=SIGN_IN_FAILED,
            email=email,
            next_path=next_path,
            remember=remember,
        )
    except TooManyAttempts as exc:
        return _credentials_page(
            request,
            template,
            status=429,
            error=THROTTLED,
            email=email,
            next_path=next_path,
            remember=remember,
            headers={"Retry-After": str(exc.retry_after)},
        )
    if outcome.pending is not None:
        page = second_step_page(
            request,
            outcome.pending.token,
            outcome.pending.methods,
            next_path=outcome.next_path,
        )
        attach_pending(page, request, binding)
        return page
    if outcome.session is None:  # unreachable: without a pending step there is a session
        return not_found_page(request)
    response = RedirectResponse(
        safe_next(next_path) or base_path(request) + ACCOUNT, status_code=303
    )
    attach_session(response, request, outcome.session)
    return response


def _registration_open(request: Request) -> bool:
    return get_keyturn(request).settings.allow_registration


# --- sign in ----------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
async def login_form(
    request: Request, next_path: NextQuery = None, login_hint: LoginHintQuery = None
) -> HTMLResponse:
    """The sign-in form; ``login_hint`` (from an OAuth client) prefills the e-mail."""
    return _credentials_page(request, "login.html", next_path=next_path, email=login_hint or "")


@router.post("/login")
async def login_submit(request: Request) -> Response:
    """Check the form and sign in: 303 to ``next`` (same-origin only) or the account."""
    form = await request.form()
    email, next_path = form_field(form, "email"), form_field(form, "next")
    remember = bool(form_field(form, "remember"))
    try:
        _check_login_csrf(request, form)
    except CsrfFailed:
        return _credentials_page(
            request, "login.html", status=403, error=FORM_EXPIRED, email=email, next_path=next_path
        )
    return await _signed_in(
        request,
        email,
        form_field(form, "password"),
        remember=remember,
        template="login.html",
        next_path=next_path,
    )


# --- register -------------------------------------------------------------------------


@router.get("/register", response_class=HTMLResponse)
async def register_form(request: Request, next_path: NextQuery = None) -> HTMLResponse:
    """The registration form (404 when registration is closed)."""
    if not _registration_open(request):
        return not_found_page(request)
    return _credentials_page(request, "register.html", next_path=next_path)


@router.post("/register")
async def register_submit(request: Request) -> Response:
    """Create the account, sign it in and go to the account page."""
    if not _registration_open(request):
        return not_found_page(request)
    form = await request.form()
    email, password, next_path = (
        form_field(form, "email"),
        form_field(form, "password"),
        form_field(form, "next"),
    )
    try:
        _check_login_csrf(request, form)
    except CsrfFailed:
        return _credentials_page(
            request, "register.html", status=403, error=FORM_EXPIRED, email=email
        )
    try:
        await get_keyturn(request).auth.register(
            email, password, ip=client_ip(request), user_agent=user_agent(request)
        )
    except TooManyAttempts as exc:
        return _credentials_page(
            request,
            "register.html",
            status=429,
            error=REGISTER_THROTTLED,
            email=email,
            headers={"Retry-After": str(exc.retry_after)},
        )
    except (InvalidRequest, EmailTaken) as exc:  # WeakPassword and InvalidEmail included
        status = 409 if isinstance(exc, EmailTaken) else 400
        return _credentials_page(
            request, "register.html", status=status, error=exc.detail, email=email
        )
    except Forbidden:
        return not_found_page(request)
    return await _signed_in(
        request, email, password, remember=False, template="login.html", next_path=next_path
    )
