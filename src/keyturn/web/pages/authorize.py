"""The authorization endpoint on the browser session (SPEC "OAuth 2.1 authorization
code flow"): ``GET /oauth/authorize`` and the consent form's ``POST /oauth/authorize``.

The decisions are :class:`keyturn.oauth.authorize.AuthorizationEndpoint`'s; this
module only maps them to HTTP:

- an untrusted client or redirect URI (``UnsafeAuthorizationRequest``): a 400
  HTML page, never a redirect;
- any other error: 303 to the redirect URI with ``error``,
  ``error_description``, ``state`` and ``iss``;
- sign in first: 303 to ``/login?next=<this request>`` (``login_hint``
  prefills the form), and the sign-in page sends the browser back;
- consent: the consent page (CSRF token of the session, framing refused by the
  HTML security headers: ``frame-ancestors 'none'`` and ``X-Frame-Options:
  DENY``); its form posts the request again with ``decision=allow|deny``;
- success: 303 to ``redirect_uri?code=...&state=...&iss=...``.

Only a browser session counts as signed in here (a bearer token is not a
sign-in at keyturn's pages). Every answer is ``Cache-Control: no-store``.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from keyturn.csrf import session_csrf_token
from keyturn.errors import RedirectedAuthorizationError, UnsafeAuthorizationRequest
from keyturn.oauth.authorize import (
    LoadedRequest,
    NeedsConsent,
    NeedsLogin,
    SignedIn,
)
from keyturn.oauth.fresh_login import FRESH_LOGIN_PARAMETER
from keyturn.principal import Principal
from keyturn.runtime import Keyturn
from keyturn.web.dependencies import OptionalPrincipal, get_keyturn, session_secret
from keyturn.web.pages.common import base_path, render_page
from keyturn.web.pages.redirect_csp import csp_with_form_action, origin_of

router = APIRouter(include_in_schema=False)

AUTHORIZE = "/oauth/authorize"
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
#: What each scope lets the app do, for the consent page.
_SCOPE_TEXT = {
    "openid": "Know who you are (your keyturn account ID)",
    "profile": "See your basic profile",
    "email": "See your e-mail address",
    "offline_access": "Stay signed in when you are not using it",
}
#: Form fields of the consent form that are not part of the authorization request.
_FORM_ONLY = frozenset({"csrf_token", "decision"})


def _signed_in(request: Request, principal: Principal | None) -> SignedIn | None:
    if principal is None or principal.via != "session" or session_secret(request) is None:
        return None
    auth_time = principal.auth_time if principal.auth_time is not None else 0.0
    return SignedIn(principal.subject, principal.session_id, auth_time, amr=principal.amr)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=_NO_STORE)


def _error_page(request: Request, exc: UnsafeAuthorizationRequest) -> HTMLResponse:
    """The 400 page for a request keyturn cannot answer by redirect."""
    return render_page(
        request,
        "authorize_error.html",
        status=400,
        headers=_NO_STORE,
        error=exc.code,
        message=exc.detail,
    )


def _login_redirect(request: Request, keyturn: Keyturn, outcome: NeedsLogin) -> RedirectResponse:
    """303 to the sign-in page, coming back to this request afterwards."""
    params = outcome.loaded.to_params()
    if outcome.fresh:
        marker = keyturn.fresh_login_marker().make(outcome.loaded.request.code_challenge)
        params[FRESH_LOGIN_PARAMETER] = marker
    back = base_path(request) + AUTHORIZE + "?" + urlencode(params)
    query = {"next": back}
    if outcome.login_hint:
        query["login_hint"] = outcome.login_hint
    return _redirect(base_path(request) + "/login?" + urlencode(query))


def _consent_page(request: Request, outcome: NeedsConsent) -> HTMLResponse:
    """The consent page; its form may redirect to the client, so CSP's
    ``form-action`` names the redirect URI's origin beside keyturn's own."""
    loaded = outcome.loaded
    secret = session_secret(request) or ""  # NeedsConsent comes only for a signed-in browser
    scopes = [
        {
            "name": scope,
            "text": _SCOPE_TEXT.get(scope, f"Use “{scope}”"),
            "new": scope in outcome.new,
        }
        for scope in outcome.scopes
    ]
    target = urlsplit(loaded.request.redirect_uri)
    csp = csp_with_form_action(origin_of(loaded.request.redirect_uri) or "")
    return render_page(
        request,
        "consent.html",
        headers={**_NO_STORE, "Content-Security-Policy": csp},
        client_name=loaded.client.name or loaded.client.id,
        redirect_host=target.netloc,
        scopes=scopes,
        params=sorted(loaded.to_params().items()),
        csrf_token=session_csrf_token(secret),
    )


async def _answer(
    request: Request, keyturn: Keyturn, loaded: LoadedRequest, signed_in: SignedIn | None
) -> Response:
    marker = request.query_params.get(FRESH_LOGIN_PARAMETER)
    fresh = keyturn.fresh_login_marker().since(marker, loaded.request.code_challenge)
    outcome = await keyturn.authorization.decide(loaded, signed_in, fresh_since=fresh)
    if isinstance(outcome, NeedsLogin):
        return _login_redirect(request, keyturn, outcome)
    if isinstance(outcome, NeedsConsent):
        return _consent_page(request, outcome)
    return _redirect(outcome.url)


@router.get(AUTHORIZE, response_class=HTMLResponse)
async def authorize(request: Request, principal: OptionalPrincipal) -> Response:
    """The authorization request: sign in, consent, then the code by redirect."""
    keyturn = get_keyturn(request)
    try:
        loaded = await keyturn.authorization.load(request.query_params.multi_items())
        return await _answer(request, keyturn, loaded, _signed_in(request, principal))
    except UnsafeAuthorizationRequest as exc:
        return _error_page(request, exc)
    except RedirectedAuthorizationError as exc:
        return _redirect(keyturn.authorization.error_url(exc))


@router.post(AUTHORIZE)
async def authorize_decision(request: Request, principal: OptionalPrincipal) -> Response:
    """The consent form's answer (``decision=allow|deny``, the session's CSRF
    token checked by the middleware): the code, or ``access_denied``."""
    keyturn = get_keyturn(request)
    form = await request.form()
    pairs = [(k, v) for k, v in form.multi_items() if isinstance(v, str) and k not in _FORM_ONLY]
    decision = form.get("decision")
    try:
        loaded = await keyturn.authorization.load(pairs)
        signed_in = _signed_in(request, principal)
        if signed_in is None or decision not in ("allow", "deny"):
            # Signed out meanwhile, or not an answer: start the request over.
            return _redirect(base_path(request) + AUTHORIZE + "?" + urlencode(loaded.to_params()))
        keyturn.audit.record(
            "consent_granted" if decision == "allow" else "consent_denied",
            user_id=signed_in.user_id,
            session=signed_in.session_id,
            client_id=loaded.client.id,
            scope=loaded.request.scope,
        )
        if decision == "deny":
            return _redirect(await keyturn.authorization.deny(loaded))
        return _redirect(await keyturn.authorization.approve(loaded, signed_in))
    except UnsafeAuthorizationRequest as exc:
        return _error_page(request, exc)
    except RedirectedAuthorizationError as exc:
        return _redirect(keyturn.authorization.error_url(exc))
