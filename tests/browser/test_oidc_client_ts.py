"""``oidc-client-ts`` (v3, from npm) signs a single-page app in to a live ``keyturn
serve`` in real headless Chromium, and renews its tokens silently (issue #13, item 7).

The SPA is ``examples/sso/spa/`` (one page and ``app.js``, the code the OIDC guide
shows) on its own origin, ``http://127.0.0.1:<port>``, served with the
library's browser build from ``tests/interop/node/node_modules`` (``make
interop-deps``): no CDN, and every other host is aborted. keyturn runs with
``--cors-origins <that origin>`` so the page may call its token and userinfo
endpoints.

- Sign-in: ``signinRedirect()`` → keyturn's sign-in page → ``/callback`` runs
  ``signinRedirectCallback()``; the user's profile and the ID token (signature
  checked here against the JWKS) name the account.
- Renew with the refresh token: a client with the ``refresh_token`` grant.
- Renew in a hidden iframe with ``prompt=none``: a client without it. keyturn
  answers ``prompt=none`` with redirects only (never a page, so its framing
  protections are not in the way); it works while the keyturn session lives, and
  after ``signoutRedirect()`` ended the session it fails with ``login_required``.
"""

from __future__ import annotations

import http.server
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from joserfc import jws
from joserfc.jwk import KeySet
from tests.browser.conftest import TIMEOUT_MS
from tests.live import LiveServer, LiveServers
from tests.services import unavailable
from tests.support import serve_in_thread

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Request

SPA_DIR = Path(__file__).parents[2] / "examples/sso/spa"
LIBRARY = (
    Path(__file__).parents[1]
    / "interop/node/node_modules/oidc-client-ts/dist/browser/oidc-client-ts.min.js"
)
AUTHORIZE = "/oauth/authorize"
EMAIL = "spa-oidc@example.com"
PASSWORD = "correct horse battery staple"

#: Only the SPA's origin and keyturn (both on 127.0.0.1) are reachable.
_OTHER_HOSTS = re.compile(r"^(?!https?://127\.0\.0\.1[:/])[a-z]+://")


class _SpaFiles(http.server.BaseHTTPRequestHandler):
    """The SPA's origin: the library, ``app.js``, ``config.js``, and ``index.html``
    at every other path (``/``, ``/callback``, ``/silent``, ``/signed-out``)."""

    config: dict[str, str] = {}  # noqa: RUF012 - set per test on the subclass

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/oidc-client-ts.min.js":
            body, kind = LIBRARY.read_bytes(), "text/javascript"
        elif path == "/app.js":
            body, kind = (SPA_DIR / "app.js").read_bytes(), "text/javascript"
        elif path == "/config.js":
            body, kind = f"const KEYTURN = {json.dumps(self.config)};".encode(), "text/javascript"
        else:
            body, kind = (SPA_DIR / "index.html").read_bytes(), "text/html; charset=utf-8"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def spa_origin() -> Iterator[tuple[str, type[_SpaFiles]]]:
    """The SPA's own origin: a static server on another port of 127.0.0.1."""
    if not LIBRARY.is_file():
        unavailable(f"{LIBRARY} missing: run `make interop-deps` (npm ci)")
    handler = type("SpaFiles", (_SpaFiles,), {"config": {}})
    with serve_in_thread(handler) as origin:
        yield origin, handler


@pytest.fixture(scope="module")
def keyturn(
    tmp_path_factory: pytest.TempPathFactory, spa_origin: tuple[str, type[_SpaFiles]]
) -> Iterator[LiveServer]:
    """``keyturn serve --cors-origins <the SPA's origin>`` with one account."""
    servers = LiveServers(tmp_path_factory.mktemp("oidc-client-ts"))
    try:
        server = servers("--cors-origins", spa_origin[0])
        server.add_user(EMAIL, PASSWORD)
        yield server
    finally:
        servers.stop_all()


def spa_client(keyturn: LiveServer, origin: str, *grants: str) -> str:
    """A public, first-party client of the SPA with its three URIs; its id."""
    done = keyturn.cli(
        "client", "add", "SPA", "--public", "--first-party",
        "--redirect-uri", origin + "/callback", "--redirect-uri", origin + "/silent",
        "--post-logout-redirect-uri", origin + "/signed-out",
        *[arg for grant in grants for arg in ("--grant", grant)], "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    client_id: str = json.loads(done.stdout)["client_id"]
    return client_id


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A tab in a fresh browser profile that reaches 127.0.0.1 only."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    context.route(_OTHER_HOSTS, lambda route: route.abort())
    try:
        yield context.new_page()
    finally:
        context.close()


def keyturn_requests(page: Page, keyturn: LiveServer) -> list[tuple[str, str, dict[str, str]]]:
    """``(method, path, query)`` of every request to keyturn that the tab (or one of
    its iframes) makes from now on, in order."""
    seen: list[tuple[str, str, dict[str, str]]] = []

    def record(request: Request) -> None:
        if request.url.startswith(keyturn.url + "/"):
            url = httpx.URL(request.url)
            seen.append((request.method, url.path, dict(url.params)))

    page.on("request", record)
    return seen


def authorize_queries(seen: list[tuple[str, str, dict[str, str]]]) -> list[dict[str, str]]:
    """The queries of the ``GET /oauth/authorize`` requests among ``seen``."""
    return [query for method, path, query in seen if (method, path) == ("GET", AUTHORIZE)]


#: What the tests read of oidc-client-ts's ``User``.
USER = """(user) => user && {
  sub: user.profile.sub, email: user.profile.email, profile: user.profile,
  id_token: user.id_token, access_token: user.access_token,
  refresh_token: user.refresh_token ?? null, scope: user.scope, expired: user.expired,
}"""


def current_user(page: Page) -> dict[str, Any] | None:
    """The signed-in user of this page load (after its callback, if any, ran)."""
    user: dict[str, Any] | None = page.evaluate(f"async () => ({USER})(await ready)")
    return user


def renew(page: Page) -> dict[str, Any]:
    """``signinSilent()``: the renewed user, or ``{"error": ...}`` when it failed."""
    result: dict[str, Any] = page.evaluate(
        f"() => renew().then({USER}, (e) => ({{error: e.error ?? String(e)}}))"
    )
    return result


def sign_in(page: Page, origin: str) -> dict[str, Any]:
    """``signinRedirect()``, keyturn's sign-in form, back at ``/callback``: the user."""
    page.goto(origin + "/")
    assert current_user(page) is None
    page.evaluate("() => { signIn(); }")
    page.wait_for_url("**/login?**")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(origin + "/callback?**")
    user = current_user(page)
    assert user is not None
    assert page.url == origin + "/"  # the callback replaced its URL
    return user


def verified_claims(keyturn: LiveServer, id_token: str) -> dict[str, Any]:
    """The ID token's claims, its RS256 signature checked against keyturn's JWKS."""
    jwks = httpx.get(keyturn.url + "/.well-known/jwks.json").json()
    header = dict(jws.extract_compact(id_token.encode()).headers())
    assert header["alg"] == "RS256" and header["typ"] == "JWT"
    key = KeySet.import_key_set(jwks).get_by_kid(header["kid"])
    claims: dict[str, Any] = json.loads(
        jws.deserialize_compact(id_token, key, algorithms=["RS256"]).payload
    )
    return claims


def whoami(keyturn: LiveServer, access_token: str) -> dict[str, Any]:
    """``GET /auth/whoami`` with the access token: 200 and the caller."""
    response = httpx.get(
        keyturn.url + "/auth/whoami", headers={"Authorization": f"Bearer {access_token}"}
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def framed(page: Page, url: str) -> str:
    """Load ``url`` in an iframe of the page: the URL the frame ended up showing
    (``chrome-error://…`` when the answer refused to be framed)."""
    page.evaluate(
        """(src) => new Promise((loaded) => {
          const frame = document.createElement("iframe");
          frame.onload = loaded;
          frame.src = src;
          document.body.append(frame);
        })""",
        url,
    )
    return page.frames[-1].url


def test_sign_in_then_renew_with_the_refresh_token(
    page: Page, spa_origin: tuple[str, type[_SpaFiles]], keyturn: LiveServer
) -> None:
    """Code flow + PKCE + nonce from the SPA; the profile (ID token and userinfo) is
    the account; signinSilent() spends the refresh token for a new access token
    and a rotated refresh token, for the same user."""
    origin, files = spa_origin
    client_id = spa_client(keyturn, origin)  # default grants: authorization_code, refresh_token
    files.config = {"authority": keyturn.url, "clientId": client_id}

    seen = keyturn_requests(page, keyturn)
    user = sign_in(page, origin)
    account = whoami(keyturn, user["access_token"])
    assert user["email"] == EMAIL and user["sub"] == account["sub"]
    assert ("GET", "/oauth/userinfo", {}) in seen  # loadUserInfo, across origins
    asked = authorize_queries(seen)
    assert user["scope"] == "openid email" and user["expired"] is False
    assert str(user["refresh_token"]).startswith("ktr_")
    claims = verified_claims(keyturn, user["id_token"])
    assert claims["iss"] == keyturn.url and claims["aud"] == client_id
    assert claims["sub"] == account["sub"] and claims["email"] == EMAIL
    assert asked[0]["code_challenge_method"] == "S256" and "prompt" not in asked[0]
    assert claims["nonce"] == asked[0]["nonce"] and len(claims["nonce"]) == 36
    assert user["profile"]["email_verified"] == claims["email_verified"]

    before = len(seen)
    renewed = renew(page)
    assert "error" not in renewed, renewed
    # The refresh grant, then userinfo with the new token: no iframe, no authorize.
    assert [request[:2] for request in seen[before:]] == [
        ("POST", "/oauth/token"),
        ("GET", "/oauth/userinfo"),
    ]
    assert renewed["sub"] == account["sub"] and renewed["email"] == EMAIL
    assert renewed["access_token"] != user["access_token"]
    assert str(renewed["refresh_token"]).startswith("ktr_")
    assert renewed["refresh_token"] != user["refresh_token"]  # rotated
    assert whoami(keyturn, renewed["access_token"])["sub"] == account["sub"]


def test_renew_in_an_iframe_while_the_keyturn_session_lives(
    page: Page, spa_origin: tuple[str, type[_SpaFiles]], keyturn: LiveServer
) -> None:
    """Without a refresh token, signinSilent() asks /oauth/authorize with
    prompt=none in a hidden iframe: a new access token while the keyturn session
    lives (after a reload too, with nothing kept in storage), login_required once
    signoutRedirect() ended it."""
    origin, files = spa_origin
    client_id = spa_client(keyturn, origin, "authorization_code")
    files.config = {"authority": keyturn.url, "clientId": client_id}

    seen = keyturn_requests(page, keyturn)
    user = sign_in(page, origin)
    assert user["refresh_token"] is None
    account = whoami(keyturn, user["access_token"])

    renewed = renew(page)
    assert "error" not in renewed, renewed
    assert renewed["sub"] == account["sub"] and renewed["email"] == EMAIL
    assert renewed["access_token"] != user["access_token"]
    assert renewed["refresh_token"] is None
    claims = verified_claims(keyturn, renewed["id_token"])
    assert claims["sub"] == account["sub"] and claims["aud"] == client_id
    asked = authorize_queries(seen)
    assert asked[-1]["prompt"] == "none" and asked[-1]["redirect_uri"] == origin + "/silent"
    assert claims["nonce"] == asked[-1]["nonce"] != asked[0]["nonce"]
    assert claims["sid"] == verified_claims(keyturn, user["id_token"])["sid"]  # one session

    # The renew frame only ever saw keyturn's redirects; its pages still refuse
    # to be framed (X-Frame-Options: DENY, frame-ancestors 'none').
    assert framed(page, keyturn.url + "/login").startswith("chrome-error://")

    page.reload()  # the user was in memory only: gone, and back from the session
    assert current_user(page) is None
    again = renew(page)
    assert "error" not in again, again
    assert again["sub"] == account["sub"]

    page.evaluate("() => { signOut(); }")
    page.wait_for_url(origin + "/signed-out")  # the hint was valid: no confirmation page
    assert current_user(page) is None
    assert renew(page) == {"error": "login_required"}
    refused = httpx.get(
        keyturn.url + "/auth/whoami", headers={"Authorization": f"Bearer {again['access_token']}"}
    )
    assert refused.status_code == 401  # the session's tokens ended with it
