"""The second step of a sign-in on the pages: ``/login`` -> ``/login/mfa`` (#15).

A correct password for a user with a second factor renders the ``/login/mfa``
form (no session yet) with the ``mfa_token`` in a hidden field and its binding
in the ``__Host-keyturn_mfa`` cookie. The form takes a code from the
authenticator app, a recovery code, or a passkey (driven by
``/static/keyturn-webauthn.js``, no inline script). Login CSRF is the sign-in
form's: the pre-session cookie must match the form's ``csrf_token``. ``next``
(from ``/login?next=...``, e.g. an ``/oauth/authorize`` request) was stored
with the ``mfa_token`` on the server, and is checked again before the redirect.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from keyturn.accounts.mfa_auth import unpack_payload
from keyturn.csrf import FORM_FIELD, allowed_origins, check_pre_session_csrf
from keyturn.errors import (
    CsrfFailed,
    InvalidMfaCode,
    InvalidMfaToken,
    InvalidRequest,
    TooManyAttempts,
    WebAuthnFailed,
)
from keyturn.mfa.store import MfaChallenge
from keyturn.web.authn.cookies import PRE_SESSION_COOKIE, read_cookie
from keyturn.web.authn.origins import check_same_origin
from keyturn.web.dependencies import get_keyturn
from keyturn.web.pages.common import ACCOUNT, base_path, form_field, redirect_to, render_page
from keyturn.web.pages.redirect_csp import csp_for_next
from keyturn.web.routes.signin import attach_session, client_binding, finish_sign_in

__all__ = ["router", "second_step_page"]

router = APIRouter(include_in_schema=False)

WRONG_CODE = "That code is not right, or it was already used."
WRONG_PASSKEY = "The passkey could not be verified."
THROTTLED = "Too many failed attempts. Please wait a while before you try again."
EXPIRED = "This sign-in attempt has expired or was started in another browser."


def second_step_page(
    request: Request,
    mfa_token: str,
    methods: Sequence[str],
    *,
    status: int = 200,
    error: str | None = None,
    headers: dict[str, str] | None = None,
    next_path: str | None = None,
) -> HTMLResponse:
    """The ``/login/mfa`` form for this ``mfa_token``. When ``next_path`` is an
    authorization request, the answer's redirect goes on to the OAuth client, so
    ``form-action`` allows that client too (as on ``/login``)."""
    from keyturn.web.pages.signin import safe_next

    csrf_token = read_cookie(request.scope["headers"], PRE_SESSION_COOKIE) or ""
    extra = {"Cache-Control": "no-store", **(headers or {})}
    csp = csp_for_next(base_path(request), safe_next(next_path))
    if csp is not None:
        extra["Content-Security-Policy"] = csp
    return render_page(
        request,
        "login_mfa.html",
        status=status,
        headers=extra,
        csrf_token=csrf_token,
        mfa_token=mfa_token,
        methods=list(methods),
        error=error,
    )


def _expired(request: Request) -> HTMLResponse:
    return render_page(
        request,
        "message.html",
        status=401,
        title="Sign in again",
        message=EXPIRED + " Please sign in again.",
    )


@router.get("/login/mfa")
async def second_step_form(request: Request) -> Response:
    """Nothing to show without a sign-in in progress: back to ``/login``."""
    return redirect_to(request, "/login")


@router.post("/login/mfa")
async def second_step_submit(request: Request) -> Response:
    """Check the second factor: 303 to ``next`` (same-origin) or the account."""
    from keyturn.web.pages.signin import safe_next

    form = await request.form()
    token = form_field(form, "mfa_token")
    try:
        check_same_origin(request.scope, allowed_origins(get_keyturn(request).settings))
        cookie = read_cookie(request.scope["headers"], PRE_SESSION_COOKIE)
        check_pre_session_csrf(cookie, form_field(form, FORM_FIELD))
    except CsrfFailed:
        return _expired(request)
    code, recovery, passkey = (
        form_field(form, "code").strip() or None,
        form_field(form, "recovery_code").strip() or None,
        form_field(form, "webauthn").strip() or None,
    )
    try:
        challenge = await get_keyturn(request).mfa_auth.two_step.peek(
            token, client_binding=client_binding(request)
        )
        outcome = await finish_sign_in(
            request, token, code=code, recovery_code=recovery, webauthn=passkey
        )
    except InvalidMfaToken:
        return _expired(request)
    except (InvalidMfaCode, WebAuthnFailed, TooManyAttempts, InvalidRequest) as exc:
        return _again(request, token, challenge, exc)
    if outcome.session is None:  # unreachable: a finished sign-in has a session
        return _expired(request)
    target = safe_next(outcome.next_path) or base_path(request) + ACCOUNT
    response = RedirectResponse(target, status_code=303)
    attach_session(response, request, outcome.session)
    return response


def _again(request: Request, token: str, challenge: MfaChallenge, exc: Exception) -> Response:
    """The form again after a refused second factor, with why."""
    _, next_path = unpack_payload(challenge.payload)
    if isinstance(exc, TooManyAttempts):
        return second_step_page(
            request,
            token,
            challenge.methods,
            status=429,
            error=THROTTLED,
            headers={"Retry-After": str(exc.retry_after)},
            next_path=next_path,
        )
    if isinstance(exc, InvalidRequest):
        return second_step_page(
            request,
            token,
            challenge.methods,
            status=400,
            error="Enter one of the codes.",
            next_path=next_path,
        )
    message = WRONG_PASSKEY if isinstance(exc, WebAuthnFailed) else WRONG_CODE
    left = exc.attempts_left if isinstance(exc, InvalidMfaCode) else None
    if left == 0:
        return _expired(request)
    if left is not None:
        message += f" {left} attempt{'s' if left != 1 else ''} left."
    return second_step_page(
        request, token, challenge.methods, status=401, error=message, next_path=next_path
    )
