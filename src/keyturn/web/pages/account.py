"""The account page and its sign-out forms (``/account``, ``/logout``).

The account page lists the caller's sign-ins, browser sessions and token
devices (refresh families: apps signed in with the password grant), as
``GET /auth/sessions`` does, each with a button to end it, and one to end all
the others. These pages are for browser sessions only: a bearer
caller is sent to sign in. CSRF: the forms carry the session's CSRF token in
``csrf_token``, checked by :class:`~keyturn.web.authn.middleware.AuthnMiddleware` before
the route runs.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from keyturn.clock import to_datetime
from keyturn.csrf import session_csrf_token
from keyturn.errors import NotFound
from keyturn.principal import Principal
from keyturn.sessions.devices import device_summary
from keyturn.web.authn.cookies import clear_session_cookie
from keyturn.web.dependencies import (
    OptionalPrincipal,
    client_ip,
    get_keyturn,
    session_secret,
    user_agent,
)
from keyturn.web.pages.account_mfa import mfa_section
from keyturn.web.pages.common import ACCOUNT, redirect_to, redirect_to_login, render_page
from keyturn.web.pages.connected_apps import connected_apps

router = APIRouter(include_in_schema=False)


def _when(timestamp: float) -> str:
    return to_datetime(timestamp).strftime("%Y-%m-%d %H:%M UTC")


def _browser_session(request: Request, principal: Principal | None) -> str | None:
    """The session secret of a signed-in browser (pages ignore bearer callers)."""
    if principal is None or principal.via != "session":
        return None
    return session_secret(request)


def _sign_in_row(
    handle: str,
    kind: str,
    created: float,
    last_seen: float,
    expires: float,
    ip: str | None,
    agent: str | None,
    *,
    current: bool,
) -> dict[str, Any]:
    """One row of the sign-ins table, for the template."""
    return {
        "id": handle,
        "kind": kind,
        "device": device_summary(agent),
        "user_agent": agent or "",
        "ip": ip or "unknown",
        "created_at": created,
        "created": _when(created),
        "last_seen": _when(last_seen),
        "expires": _when(expires),
        "current": current,
    }


@router.get("/account", response_class=HTMLResponse)
async def account(request: Request, principal: OptionalPrincipal) -> Response:
    """The caller's e-mail and sign-ins (browser sessions and token devices, oldest
    first), each with a sign-out button."""
    secret = _browser_session(request, principal)
    if principal is None or secret is None:
        return redirect_to_login(request)
    keyturn = get_keyturn(request)
    sessions = await keyturn.sessions.list_for_user(principal.subject)
    families = await keyturn.refresh_families.list_live(principal.subject)
    ttl = keyturn.settings.refresh_token_ttl
    rows = [
        _sign_in_row(
            session.handle,
            "browser",
            session.created_at,
            session.last_seen_at,
            session.ends_at,
            session.ip,
            session.user_agent,
            current=session.handle == principal.session_id,
        )
        for session in sessions
    ]
    rows += [
        _sign_in_row(
            family.id,
            "token",
            family.created_at,
            family.last_used_at,
            family.ends_at(ttl),
            family.ip,
            family.user_agent,
            current=False,  # this page is a browser session, never a token
        )
        for family in families
    ]
    rows.sort(key=lambda row: row["created_at"])
    return render_page(
        request,
        "account.html",
        email=principal.email,
        sessions=rows,
        others=sum(1 for row in rows if not row["current"]),
        csrf_token=session_csrf_token(secret),
        connected_apps=await connected_apps(keyturn, principal.subject),
        mfa=await mfa_section(request, principal),  # mfa (wave 2): _mfa.html
    )


@router.post("/account/sessions/{session_id}/revoke")
async def account_revoke(
    request: Request, session_id: str, principal: OptionalPrincipal
) -> Response:
    """Sign out one of the caller's sign-ins, a browser session or a token device
    (its refresh family and access tokens); signing out this one goes to /login."""
    if principal is None or _browser_session(request, principal) is None:
        return redirect_to_login(request)
    keyturn = get_keyturn(request)
    try:
        try:
            await keyturn.auth.revoke_session(principal.subject, session_id, ip=client_ip(request))
        except NotFound:  # not a browser session: a token device, as DELETE /auth/sessions/{id}
            await keyturn.token_revoker.end_family(
                principal.subject, session_id, ip=client_ip(request)
            )
    except NotFound:
        return render_page(
            request,
            "message.html",
            status=404,
            title="Not found",
            message="That sign-in does not exist or has already ended.",
        )
    if session_id == principal.session_id:
        response = redirect_to(request, "/login")
        clear_session_cookie(response)
        return response
    return redirect_to(request, ACCOUNT)


@router.post("/account/sign-out-others")
async def account_sign_out_others(request: Request, principal: OptionalPrincipal) -> Response:
    """End every sign-in of the caller except this one."""
    secret = _browser_session(request, principal)
    if principal is None or secret is None:
        return redirect_to_login(request)
    await get_keyturn(request).auth.sign_out_everywhere(
        principal.subject, keep_secret=secret, ip=client_ip(request)
    )
    return redirect_to(request, ACCOUNT)


@router.post("/logout")
async def logout(request: Request, principal: OptionalPrincipal) -> Response:
    """End this session, clear its cookie and go to the sign-in page."""
    secret = _browser_session(request, principal)
    if secret is not None:
        await get_keyturn(request).auth.sign_out(
            secret, ip=client_ip(request), user_agent=user_agent(request)
        )
    response = redirect_to(request, "/login")
    clear_session_cookie(response)
    return response
