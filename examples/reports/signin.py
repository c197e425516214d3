"""Signing in to reports through keyturn with OpenID Connect, as any web app would.

Nothing here imports keyturn: the issuer is only a URL, and everything else
comes from its ``/.well-known/openid-configuration`` through Authlib's
Starlette client, a standard OIDC relying-party library.

- ``GET /login`` starts the authorization code flow (``openid email``, PKCE
  S256 and a nonce, both made and kept by Authlib in the session).
- ``GET /auth/callback`` finishes it: Authlib redeems the code (client secret,
  ``client_secret_basic``) and validates the ID token (signature by the JWKS,
  ``iss``, ``aud``, ``exp``, ``nonce``, ``at_hash``; :func:`id_token_checks`). The user (``sub``,
  ``email`` and the issuer's session ``sid``) is then recorded **server-side**
  in :class:`SignedInSessions`; the cookie (Starlette's signed
  ``SessionMiddleware`` cookie, ``reports_session``) holds only a random id. So
  a session can be ended from outside the browser, which a cookie alone cannot.
- ``POST /logout`` (the page's form, with its CSRF token) ends the reports
  session and sends the browser to the issuer's ``end_session_endpoint`` with
  ``id_token_hint``, ``post_logout_redirect_uri`` and ``state``
  (RP-initiated logout); ``GET /auth/signed-out`` is where it comes back, and
  Authlib checks that ``state`` is the one this browser was given.
- ``POST /auth/backchannel-logout`` is the back-channel logout endpoint: the
  issuer POSTs a ``logout_token`` whenever a session there ends (sign-out,
  "sign out everywhere", a revoke, a password change...). It is verified
  (:mod:`examples.reports.logout_token`) and every reports session of its
  ``sid`` (or, without one, of its ``sub``) ends: the next page load shows the
  user signed out. 200 on success, 400 with a JSON error for a token that fails
  a check, 503 while the issuer's keys cannot be fetched (the issuer retries),
  always ``Cache-Control: no-store``.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from html import escape
from typing import Any

from authlib.integrations.starlette_client import OAuth, OAuthError
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.middleware.sessions import SessionMiddleware

from examples.reports.logout_token import KeysUnavailable, LogoutTokenError, LogoutTokenVerifier

__all__ = ["SESSION_COOKIE", "SignInSettings", "SignedIn", "SignedInSessions", "install_sign_in"]

logger = logging.getLogger("reports.signin")

#: The reports app's own cookie. Not ``session``: browsers share cookies between
#: ports of one host, and the issuer may run on another port of 127.0.0.1.
SESSION_COOKIE = "reports_session"
#: How long a reports session lasts at most (the cookie's max-age too).
SESSION_LIFETIME = 8 * 3600
SCOPE = "openid email"
NO_STORE = {"Cache-Control": "no-store"}


@dataclass(frozen=True, slots=True)
class SignInSettings:
    """The client registration at the issuer and where reports is reached.

    ``base_url`` is reports' public URL; the registered URIs are
    ``BASE/auth/callback`` (redirect), ``BASE/auth/signed-out`` (post-logout
    redirect) and ``BASE/auth/backchannel-logout``.
    """

    issuer: str
    client_id: str
    client_secret: str
    base_url: str

    @property
    def redirect_uri(self) -> str:
        return f"{self.base_url}/auth/callback"

    @property
    def post_logout_redirect_uri(self) -> str:
        return f"{self.base_url}/auth/signed-out"


@dataclass(frozen=True, slots=True)
class SignedIn:
    """One signed-in reports session: who, and the issuer session it came from."""

    sub: str
    email: str | None
    sid: str | None
    id_token: str
    started: float


class SignedInSessions:
    """The server-side record of reports sessions, by the random id in the cookie.

    In memory, like the rest of this example's data: a restart signs everyone out.
    """

    def __init__(self, lifetime: float = SESSION_LIFETIME) -> None:
        self.lifetime = lifetime
        self._by_id: dict[str, SignedIn] = {}

    def start(self, user: SignedIn) -> str:
        """Record ``user``; the id to keep in the cookie."""
        self._prune()
        session_id = secrets.token_urlsafe(32)
        self._by_id[session_id] = user
        return session_id

    def get(self, session_id: object) -> SignedIn | None:
        """The live session ``session_id``, or None (unknown, ended or too old)."""
        if not isinstance(session_id, str):
            return None
        found = self._by_id.get(session_id)
        if found is not None and time.time() - found.started > self.lifetime:
            del self._by_id[session_id]
            return None
        return found

    def end(self, session_id: object) -> None:
        if isinstance(session_id, str):
            self._by_id.pop(session_id, None)

    def end_for(self, *, sid: str | None, sub: str | None) -> int:
        """End every session of the issuer session ``sid`` (of ``sub``, when both
        are given), or every session of ``sub`` without a ``sid``; how many ended."""
        if sid is not None:
            ended = [
                key
                for key, user in self._by_id.items()
                if user.sid == sid and (sub is None or user.sub == sub)
            ]
        else:
            ended = [key for key, user in self._by_id.items() if user.sub == sub]
        for key in ended:
            del self._by_id[key]
        return len(ended)

    def __len__(self) -> int:
        return len(self._by_id)

    def _prune(self) -> None:
        cutoff = time.time() - self.lifetime
        for key in [key for key, user in self._by_id.items() if user.started < cutoff]:
            del self._by_id[key]


def install_sign_in(
    app: FastAPI, settings: SignInSettings | None, *, session_secret: str
) -> SignedInSessions:
    """Add the session cookie and the sign-in routes to ``app``. With ``settings``
    None (no client registration) ``/`` says how to set sign-in up."""
    sessions = SignedInSessions()
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_LIFETIME,
        same_site="lax",  # sent on the top-level redirect back from the issuer
        https_only=bool(settings and settings.base_url.startswith("https://")),
    )
    app.include_router(_routes(settings, sessions))
    return sessions


def _routes(settings: SignInSettings | None, sessions: SignedInSessions) -> APIRouter:
    router = APIRouter()
    if settings is None:

        @router.get("/", response_class=HTMLResponse)
        async def home_without_sign_in() -> Response:
            return _page(
                "Reports",
                "<p>Sign-in with keyturn is not set up: this service has no client "
                "registration. Register one (<code>python -m "
                "examples.reports.register_client</code>) and start reports with "
                "<code>--client-file</code>, or run <code>make example-reports-strict</code>.</p>",
            )

        return router

    oauth = OAuth()
    oauth.register(
        "keyturn",
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        server_metadata_url=f"{settings.issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": SCOPE, "code_challenge_method": "S256"},
    )
    provider = oauth.create_client("keyturn")  # Authlib's client of the issuer

    async def jwks(force: bool) -> dict[str, Any]:
        keys: dict[str, Any] = await provider.fetch_jwk_set(force=force)
        return keys

    verifier = LogoutTokenVerifier(issuer=settings.issuer, client_id=settings.client_id, jwks=jwks)

    @router.get("/", response_class=HTMLResponse)
    async def home(request: Request) -> Response:
        user = sessions.get(request.session.get("session_id"))
        if user is None:
            request.session.pop("session_id", None)
            return _page(
                "Reports",
                '<p>You are not signed in.</p><p><a href="/login">Sign in with keyturn</a></p>',
            )
        who = escape(user.email or user.sub)
        csrf = escape(request.session.get("csrf", ""))
        return _page(
            "Reports",
            f'<p>Signed in as <strong class="user">{who}</strong>.</p>'
            f'<form method="post" action="/logout">'
            f'<input type="hidden" name="csrf_token" value="{csrf}">'
            f'<button type="submit">Sign out</button></form>',
        )

    @router.get("/login")
    async def login(request: Request) -> Response:
        try:
            redirect: Response = await provider.authorize_redirect(request, settings.redirect_uri)
        except Exception:  # the metadata cannot be fetched (httpx or httpx2 errors)
            return _unreachable("sign-in")
        return redirect

    @router.get("/auth/callback")
    async def callback(request: Request) -> Response:
        try:
            token = await provider.authorize_access_token(
                request, claims_options=id_token_checks(settings)
            )
        except OAuthError as exc:  # an error answer, a wrong state, a bad ID token
            return _page("Sign-in failed", f"<p>{escape(str(exc))}</p>", status=400)
        except Exception:
            return _unreachable("the code exchange")
        claims = token.get("userinfo")  # the validated ID token's claims
        if not claims or "sub" not in claims:
            return _page("Sign-in failed", "<p>keyturn sent no ID token.</p>", status=400)
        user = SignedIn(
            sub=str(claims["sub"]),
            email=claims.get("email"),
            sid=claims.get("sid"),
            id_token=str(token["id_token"]),
            started=time.time(),
        )
        request.session.clear()  # a new session id on every sign-in
        request.session["session_id"] = sessions.start(user)
        request.session["csrf"] = secrets.token_urlsafe(32)
        return RedirectResponse("/", status_code=303)

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        form = await request.form()
        sent, expected = form.get("csrf_token"), request.session.get("csrf")
        if not (
            isinstance(sent, str)
            and isinstance(expected, str)
            and hmac.compare_digest(sent, expected)
        ):
            return _page("Not signed out", "<p>The form has expired; reload.</p>", status=403)
        session_id = request.session.get("session_id")
        user = sessions.get(session_id)
        sessions.end(session_id)
        request.session.clear()
        if user is None:
            return RedirectResponse("/", status_code=303)
        try:
            redirect: Response = await provider.logout_redirect(
                request,
                post_logout_redirect_uri=settings.post_logout_redirect_uri,
                id_token_hint=user.id_token,
            )
        except Exception:  # signed out here; keyturn cannot be told
            logger.exception("RP-initiated logout: keyturn's metadata cannot be fetched")
            return RedirectResponse("/", status_code=303)
        redirect.status_code = 303  # the browser follows a POST's redirect with GET
        return redirect

    @router.get("/auth/signed-out", response_class=HTMLResponse)
    async def signed_out(request: Request) -> Response:
        try:
            await provider.validate_logout_response(request)  # state is this browser's
        except OAuthError as exc:
            return _page("Sign-out not confirmed", f"<p>{escape(str(exc))}</p>", status=400)
        return _page(
            "Signed out",
            '<p>You are signed out of reports and of keyturn.</p><p><a href="/">Reports</a></p>',
        )

    @router.post("/auth/backchannel-logout")
    async def backchannel_logout(request: Request) -> Response:
        try:
            form = await request.form()
        except Exception:  # not a form body
            return _logout_error("the body must be application/x-www-form-urlencoded")
        value = form.get("logout_token")
        if not isinstance(value, str):
            return _logout_error("logout_token is missing")
        try:
            logout = await verifier.verify(value)
        except LogoutTokenError as exc:
            logger.info("back-channel logout refused: %s", exc.description)
            return _logout_error(exc.description)
        except KeysUnavailable:
            return JSONResponse(
                {"error": "temporarily_unavailable", "error_description": "issuer keys"},
                status_code=503,
                headers=NO_STORE,
            )
        ended = sessions.end_for(sid=logout.sid, sub=logout.sub)
        logger.info("back-channel logout: %d reports session(s) ended", ended)
        return Response(status_code=200, headers=NO_STORE)

    return router


def id_token_checks(settings: SignInSettings) -> dict[str, Any]:
    """What Authlib checks of the ID token's ``iss`` and ``aud`` (besides the
    signature, ``exp``, ``iat``, ``nonce``, ``azp`` and ``at_hash`` it always
    checks): ``iss`` must be the issuer reports was told, not merely the one the
    metadata names (OIDC Discovery section 4.3), and ``aud`` must hold this
    client (OIDC Core section 3.1.3.7; Authlib's default only requires that
    ``aud`` or ``azp`` is this client)."""
    return {
        "iss": {"essential": True, "values": [settings.issuer]},
        "aud": {"essential": True, "value": settings.client_id},
    }


def _unreachable(step: str) -> Response:
    logger.exception("%s: keyturn cannot be reached", step)
    return _page("Sign-in unavailable", "<p>keyturn cannot be reached.</p>", status=502)


def _logout_error(description: str) -> Response:
    """Section 2.8: 400, optionally with an OAuth-style JSON error."""
    return JSONResponse(
        {"error": "invalid_request", "error_description": description},
        status_code=400,
        headers=NO_STORE,
    )


def _page(title: str, body: str, *, status: int = 200) -> Response:
    """A small HTML page; never cached (it may show who is signed in)."""
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head><body>"
        f'<header><a href="/">Reports</a></header><main><h1>{escape(title)}</h1>'
        f"{body}</main></body></html>"
    )
    return HTMLResponse(html, status_code=status, headers=NO_STORE)
