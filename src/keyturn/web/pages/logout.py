"""RP-initiated logout: ``GET|POST /oauth/logout`` (SPEC "OpenID Connect",
RP-Initiated Logout 1.0); the checks are :mod:`keyturn.oidc.logout`'s.

- A valid ``id_token_hint`` for the signed-in user ends the keyturn session at
  once (the relying party proved it holds that user's ID token).
- A missing or invalid hint, or a hint for someone else, shows a confirmation
  page; its form posts back here with the session's CSRF token and
  ``confirm=yes``. The endpoint itself is exempt from the middleware's CSRF gate
  (relying parties may POST to it cross-site), so the confirmation is checked
  here, and nothing but a valid hint or a valid confirmation ends a session.
- Afterwards: 303 to the registered ``post_logout_redirect_uri`` with ``state``,
  or a "signed out" page. An unregistered URI or a ``client_id`` that disagrees
  with the hint is a 400 page, never a redirect.

Ending the session is the ordinary sign-out (:meth:`keyturn.accounts.auth.AuthService.sign_out`):
the session's refresh families end with it and back-channel logout goes out.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from keyturn.csrf import check_session_csrf, session_csrf_token
from keyturn.errors import CsrfFailed, InvalidRequest
from keyturn.oidc.logout import LogoutRequest, check_logout_request
from keyturn.web.authn.cookies import clear_session_cookie
from keyturn.web.dependencies import (
    OptionalPrincipal,
    client_ip,
    get_keyturn,
    session_secret,
    user_agent,
)
from keyturn.web.pages.common import form_field, render_page
from keyturn.web.pages.redirect_csp import csp_with_form_action, origin_of

__all__ = ["LOGOUT_PATH", "router"]

LOGOUT_PATH = "/oauth/logout"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_PARAMS = ("id_token_hint", "client_id", "post_logout_redirect_uri", "state")

router = APIRouter(include_in_schema=False)


@router.api_route(LOGOUT_PATH, methods=["GET", "POST"])
async def logout(request: Request, principal: OptionalPrincipal) -> Response:
    """End the keyturn session for a relying party, confirming when needed."""
    keyturn = get_keyturn(request)
    confirm = False
    submitted_csrf = ""
    if request.method == "POST":
        form = await request.form()
        params = {name: form_field(form, name) for name in _PARAMS}
        confirm = form_field(form, "confirm") == "yes"
        submitted_csrf = form_field(form, "csrf_token")
    else:
        params = {name: request.query_params.get(name, "") for name in _PARAMS}
    try:
        checked = await check_logout_request(
            {name: value for name, value in params.items() if value},
            ring=keyturn.keys.ring,
            issuer=keyturn.settings.public_issuer,
            lookup_client=keyturn.clients.get,
        )
    except InvalidRequest as exc:
        return render_page(
            request,
            "message.html",
            status=400,
            headers=_NO_STORE,
            title="Cannot sign out here",
            message=exc.detail,
        )
    secret = (
        session_secret(request) if principal is not None and principal.via == "session" else None
    )
    if secret is None or principal is None:
        return _done(request, checked)  # nobody signed in here: nothing to end
    hinted = checked.hint is not None and checked.hint.subject == principal.subject
    if not hinted:
        if not confirm:
            return _confirmation(request, checked, secret)
        try:
            check_session_csrf(secret, submitted_csrf)
        except CsrfFailed:
            return render_page(
                request,
                "message.html",
                status=403,
                headers=_NO_STORE,
                title="Please try again",
                message="The sign-out form expired. Sign out from your account page.",
            )
    await keyturn.auth.sign_out(secret, ip=client_ip(request), user_agent=user_agent(request))
    response = _done(request, checked)
    clear_session_cookie(response)
    return response


def _confirmation(request: Request, checked: LogoutRequest, secret: str) -> HTMLResponse:
    """The "Sign out?" page; its form may end in a redirect to the relying party,
    so CSP's ``form-action`` names that origin too."""
    origin = origin_of(checked.redirect_uri) if checked.redirect_uri else None
    return render_page(
        request,
        "logout_confirm.html",
        headers={**_NO_STORE, "Content-Security-Policy": csp_with_form_action(origin or "")},
        client_name=checked.client.name if checked.client is not None else "",
        fields=checked.form_fields(),
        csrf_token=session_csrf_token(secret),
    )


def _done(request: Request, checked: LogoutRequest) -> Response:
    if checked.redirect_uri is not None:
        return RedirectResponse(checked.redirect_uri, status_code=303, headers=_NO_STORE)
    return render_page(
        request,
        "message.html",
        headers=_NO_STORE,
        title="Signed out",
        message="You are signed out of keyturn in this browser.",
    )
