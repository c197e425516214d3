"""The HTML pages (SPEC "Browser pages"): sign in, register, account, sign out.

Server-rendered with Jinja2 (autoescaping on), no JavaScript, one stylesheet;
the CSP from :class:`~keyturn.web.middleware.SecurityHeadersMiddleware` forbids
inline scripts and styles, and these templates need neither.

CSRF: forms of a signed-in user carry the session's CSRF token in
``csrf_token``, checked by :class:`~keyturn.web.authn.AuthnMiddleware` before
the route runs. The sign-in and registration forms have no session yet: GET
sets a random ``__Host-keyturn_csrf`` cookie (``SameSite=Strict``) and puts the
same value in the form; POST requires both to match and the request not to be
cross-site (login CSRF, SEC-30). The cookie is dropped once signed in.
"""

from __future__ import annotations

import hmac
import urllib.parse
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.datastructures import FormData

from keyturn.clock import to_datetime
from keyturn.errors import (
    CsrfFailed,
    EmailTaken,
    Forbidden,
    InvalidCredentials,
    InvalidRequest,
    NotFound,
    TooManyAttempts,
)
from keyturn.principal import Principal
from keyturn.web.authn import allowed_origins, check_same_origin
from keyturn.web.cookies import (
    PRE_SESSION_COOKIE,
    clear_session_cookie,
    new_pre_session_token,
    read_cookie,
    set_pre_session_cookie,
)
from keyturn.web.dependencies import (
    OptionalPrincipal,
    client_ip,
    get_keyturn,
    session_secret,
    user_agent,
)
from keyturn.web.routes_auth import attach_session, session_expiry, sign_in

router = APIRouter(include_in_schema=False)

#: ``?next=/somewhere``: where to go after signing in (see :func:`safe_next`).
NextQuery = Annotated[str | None, Query(alias="next")]

#: The one message for an unknown address, a wrong password and a disabled account.
SIGN_IN_FAILED = InvalidCredentials.default_detail
THROTTLED = "Too many failed attempts. Please wait a while before you try again."
FORM_EXPIRED = "This form has expired or was sent from another site. Please try again."
ACCOUNT = "/account"

_templates = Environment(
    loader=PackageLoader("keyturn.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


# --- helpers --------------------------------------------------------------------------


def safe_next(value: str | None) -> str | None:
    """``value`` if it is a same-origin relative path to send the user to, else None.

    Accepted: a path starting with exactly one ``/``. Refused: ``//host`` and
    ``/\\host`` (browsers read both as another host), anything with a scheme or
    host, backslashes, control characters (browsers drop tabs and newlines, so
    ``/\\t/host`` would become ``//host``), and very long values.
    """
    if not value or len(value) > 2000 or not value.startswith("/"):
        return None
    if value.startswith("//") or "\\" in value:
        return None
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        return None
    parts = urllib.parse.urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


def device_summary(agent: str | None) -> str:
    """A short human name for a ``User-Agent``, such as "Firefox on Linux"."""
    if not agent:
        return "Unknown device"
    browsers = (
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
        ("python-httpx/", "Python (httpx)"),
        ("python-requests/", "Python (requests)"),
    )
    systems = (
        ("Windows", "Windows"),
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    )
    browser = next((name for marker, name in browsers if marker in agent), None)
    system = next((name for marker, name in systems if marker in agent), None)
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or agent[:40]


def _when(timestamp: float) -> str:
    return to_datetime(timestamp).strftime("%Y-%m-%d %H:%M UTC")


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _page(
    request: Request,
    template: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    settings = get_keyturn(request).settings
    html = _templates.get_template(template).render(
        root=_root(request),
        allow_registration=settings.allow_registration,
        min_password_length=settings.min_password_length,
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=headers)


def _redirect(request: Request, path: str) -> RedirectResponse:
    return RedirectResponse(_root(request) + path, status_code=303)


def _to_login(request: Request) -> RedirectResponse:
    return _redirect(request, "/login?next=" + ACCOUNT)


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


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
    submitted = _field(form, "csrf_token")
    if not cookie or not submitted:
        raise CsrfFailed()
    if not hmac.compare_digest(cookie.encode(), submitted.encode("utf-8", "replace")):
        raise CsrfFailed()


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
    response = _page(
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
    """Sign in and redirect, or the form again with the one generic message."""
    try:
        _, issued = await sign_in(request, email, password, remember=remember)
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
    response = RedirectResponse(safe_next(next_path) or _root(request) + ACCOUNT, status_code=303)
    attach_session(response, request, issued)
    return response


def _registration_open(request: Request) -> bool:
    return get_keyturn(request).settings.allow_registration


def _not_found(request: Request) -> HTMLResponse:
    return _page(
        request, "message.html", status=404, title="Not found", message="This page does not exist."
    )


# --- sign in ----------------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next_path: NextQuery = None) -> HTMLResponse:
    """The sign-in form."""
    return _credentials_page(request, "login.html", next_path=next_path)


@router.post("/login")
async def login_submit(request: Request) -> Response:
    """Check the form and sign in: 303 to ``next`` (same-origin only) or the account."""
    form = await request.form()
    email, next_path = _field(form, "email"), _field(form, "next")
    remember = bool(_field(form, "remember"))
    try:
        _check_login_csrf(request, form)
    except CsrfFailed:
        return _credentials_page(
            request, "login.html", status=403, error=FORM_EXPIRED, email=email, next_path=next_path
        )
    return await _signed_in(
        request,
        email,
        _field(form, "password"),
        remember=remember,
        template="login.html",
        next_path=next_path,
    )


# --- register -------------------------------------------------------------------------


@router.get("/register", response_class=HTMLResponse)
async def register_form(request: Request, next_path: NextQuery = None) -> HTMLResponse:
    """The registration form (404 when registration is closed)."""
    if not _registration_open(request):
        return _not_found(request)
    return _credentials_page(request, "register.html", next_path=next_path)


@router.post("/register")
async def register_submit(request: Request) -> Response:
    """Create the account, sign it in and go to the account page."""
    if not _registration_open(request):
        return _not_found(request)
    form = await request.form()
    email, password, next_path = (
        _field(form, "email"),
        _field(form, "password"),
        _field(form, "next"),
    )
    try:
        _check_login_csrf(request, form)
    except CsrfFailed:
        return _credentials_page(
            request, "register.html", status=403, error=FORM_EXPIRED, email=email
        )
    try:
        await get_keyturn(request).auth.register(email, password)
    except (InvalidRequest, EmailTaken) as exc:  # WeakPassword and InvalidEmail included
        status = 409 if isinstance(exc, EmailTaken) else 400
        return _credentials_page(
            request, "register.html", status=status, error=exc.detail, email=email
        )
    except Forbidden:
        return _not_found(request)
    return await _signed_in(
        request, email, password, remember=False, template="login.html", next_path=next_path
    )


# --- account --------------------------------------------------------------------------


def _browser_session(request: Request, principal: Principal | None) -> str | None:
    """The session secret of a signed-in browser (pages ignore bearer callers)."""
    if principal is None or principal.via != "session":
        return None
    return session_secret(request)


@router.get("/account", response_class=HTMLResponse)
async def account(request: Request, principal: OptionalPrincipal) -> Response:
    """The caller's e-mail and sign-ins, each with a sign-out button."""
    secret = _browser_session(request, principal)
    if principal is None or secret is None:
        return _to_login(request)
    keyturn = get_keyturn(request)
    sessions = await keyturn.sessions.list(principal.subject)
    rows = [
        {
            "id": session.handle,
            "device": device_summary(session.user_agent),
            "user_agent": session.user_agent or "",
            "ip": session.ip or "unknown",
            "created": _when(session.created_at),
            "last_seen": _when(session.last_seen_at),
            "expires": _when(session_expiry(session)),
            "current": session.handle == principal.session_id,
        }
        for session in sessions
    ]
    return _page(
        request,
        "account.html",
        email=principal.email,
        sessions=rows,
        others=sum(1 for row in rows if not row["current"]),
        csrf_token=keyturn.sessions.csrf_token(secret),
    )


@router.post("/account/sessions/{session_id}/revoke")
async def account_revoke(
    request: Request, session_id: str, principal: OptionalPrincipal
) -> Response:
    """Sign out one of the caller's sign-ins; signing out this one goes to /login."""
    if principal is None or _browser_session(request, principal) is None:
        return _to_login(request)
    try:
        await get_keyturn(request).auth.revoke_session(
            principal.subject, session_id, ip=client_ip(request)
        )
    except NotFound:
        return _page(
            request,
            "message.html",
            status=404,
            title="Not found",
            message="That sign-in does not exist or has already ended.",
        )
    if session_id == principal.session_id:
        response = _redirect(request, "/login")
        clear_session_cookie(response)
        return response
    return _redirect(request, ACCOUNT)


@router.post("/account/sign-out-others")
async def account_sign_out_others(request: Request, principal: OptionalPrincipal) -> Response:
    """End every sign-in of the caller except this one."""
    secret = _browser_session(request, principal)
    if principal is None or secret is None:
        return _to_login(request)
    await get_keyturn(request).auth.sign_out_everywhere(
        principal.subject, keep_secret=secret, ip=client_ip(request)
    )
    return _redirect(request, ACCOUNT)


@router.post("/logout")
async def logout(request: Request, principal: OptionalPrincipal) -> Response:
    """End this session, clear its cookie and go to the sign-in page."""
    secret = _browser_session(request, principal)
    if secret is not None:
        await get_keyturn(request).auth.sign_out(
            secret, ip=client_ip(request), user_agent=user_agent(request)
        )
    response = _redirect(request, "/login")
    clear_session_cookie(response)
    return response
