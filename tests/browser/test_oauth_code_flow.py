"""Signing apps in through ``/oauth/authorize`` in real headless Chromium (issue #12, item 6).

``keyturn serve --cors-origins <app>`` on one port; the apps' pages on another
(``http://127.0.0.1:<port>``, a loopback redirect URI registered once for any port).

- A public SPA: its page makes a PKCE pair with WebCrypto, sends the browser to
  ``/oauth/authorize``, the user signs in on keyturn's page, the browser comes back
  with a code, and the page exchanges it with ``fetch`` (CORS) for tokens.
- A third-party confidential web app: the same sign-in, then the consent page,
  "Allow", and the code at the app's callback, which the app's back end (here the
  test) exchanges with its secret.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from tests.browser.conftest import TIMEOUT_MS
from tests.live import LiveServer, LiveServers
from tests.support import serve_in_thread

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

EMAIL = "oauth-user@example.com"
PASSWORD = "correct horse battery staple"
REDIRECT = "http://127.0.0.1/callback"

SPA_SCRIPT = """
const keyturn = "%(keyturn)s";
const clientId = "%(client_id)s";
const redirectUri = location.origin + "/callback";
const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes)))
  .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
window.startSignIn = async () => {
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  const challenge = b64url(digest);
  const state = b64url(crypto.getRandomValues(new Uint8Array(16)));
  sessionStorage.setItem("pkce", JSON.stringify({verifier, state}));
  location.assign(keyturn + "/oauth/authorize?" + new URLSearchParams({
    response_type: "code", client_id: clientId, redirect_uri: redirectUri,
    scope: "openid email", state, code_challenge: challenge, code_challenge_method: "S256",
  }));
};
window.finishSignIn = async () => {
  const query = new URLSearchParams(location.search);
  const saved = JSON.parse(sessionStorage.getItem("pkce"));
  if (query.get("state") !== saved.state) return {error: "state mismatch"};
  if (query.get("iss") !== keyturn) return {error: "iss mismatch"};
  const response = await fetch(keyturn + "/oauth/token", {
    method: "POST",
    headers: {"Content-Type": "application/x-www-form-urlencoded"},
    body: new URLSearchParams({
      grant_type: "authorization_code", code: query.get("code"), redirect_uri: redirectUri,
      client_id: clientId, code_verifier: saved.verifier,
    }),
  });
  const body = await response.json();
  const whoami = await fetch(keyturn + "/auth/whoami", {
    headers: {Authorization: "Bearer " + body.access_token},
  });
  return {status: response.status, keys: Object.keys(body).sort(),
          email: (await whoami.json()).email};
};
"""


class _AppPages(http.server.BaseHTTPRequestHandler):
    """The apps' origin: the SPA's page at every path (``/`` and ``/callback``)."""

    html = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.html)))
        self.end_headers()
        self.wfile.write(self.html)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def app_origin() -> Iterator[tuple[str, type[_AppPages]]]:
    """The apps' own origin: a static server on another port of 127.0.0.1."""
    handler = type("AppPages", (_AppPages,), {})
    with serve_in_thread(handler) as origin:
        yield origin, handler


def add_client(server: LiveServer, name: str, *flags: str) -> dict[str, Any]:
    """``keyturn client add NAME --redirect-uri ... FLAGS --json``."""
    done = server.cli("client", "add", name, "--redirect-uri", REDIRECT, *flags, "--json")
    assert done.returncode == 0, done.stderr
    created: dict[str, Any] = json.loads(done.stdout)
    return created


@pytest.fixture(scope="module")
def oauth_server(
    tmp_path_factory: pytest.TempPathFactory, app_origin: tuple[str, type[_AppPages]]
) -> Iterator[tuple[LiveServer, dict[str, Any], dict[str, Any]]]:
    """``keyturn serve`` letting the apps' origin call it, one user, a first-party
    SPA and a third-party confidential web app."""
    origin, handler = app_origin
    servers = LiveServers(tmp_path_factory.mktemp("oauth-live"))
    try:
        server = servers("--cors-origins", origin)
        server.add_user(EMAIL, PASSWORD)
        spa = add_client(server, "Notes SPA", "--first-party")
        third = add_client(server, "Photo Printer", "--confidential")
        script = SPA_SCRIPT % {"keyturn": server.url, "client_id": spa["client_id"]}
        handler.html = f"<!doctype html><title>App</title><script>{script}</script>".encode()
        yield server, spa, third
    finally:
        servers.stop_all()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A tab in a fresh browser profile."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def sign_in(page: Page) -> None:
    """Fill in keyturn's sign-in page."""
    page.wait_for_url("**/login?**")
    assert page.locator("input[name=email]").count() == 1
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def test_public_spa_signs_in_through_authorize_with_pkce(
    page: Page,
    app_origin: tuple[str, type[_AppPages]],
    oauth_server: tuple[LiveServer, dict[str, Any], dict[str, Any]],
) -> None:
    """The SPA sends the browser to /oauth/authorize, the user signs in on keyturn's
    page, and the SPA exchanges the code (PKCE, no secret) for working tokens."""
    origin = app_origin[0]
    page.goto(origin + "/")
    page.evaluate("() => { startSignIn(); }")
    sign_in(page)
    page.wait_for_url(origin + "/callback?**")
    query = parse_qs(urlsplit(page.url).query)
    assert "code" in query and "state" in query
    result = page.evaluate("() => finishSignIn()")
    assert result == {
        "status": 200,
        # "openid" was asked for, so an ID token comes with the tokens (#13).
        "keys": ["access_token", "expires_in", "id_token", "refresh_token", "scope", "token_type"],
        "email": EMAIL,
    }


def test_third_party_app_gets_consent_then_a_code(
    page: Page,
    app_origin: tuple[str, type[_AppPages]],
    oauth_server: tuple[LiveServer, dict[str, Any], dict[str, Any]],
) -> None:
    """A third-party client: sign in, the consent page names the app, Allow sends
    the code to the app's callback; the app's back end redeems it with its secret;
    the app is listed under Connected apps."""
    server, _, third = oauth_server
    origin = app_origin[0]
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    params = {
        "response_type": "code",
        "client_id": third["client_id"],
        "redirect_uri": origin + "/callback",
        "scope": "openid email",
        "state": "third-state",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    page.goto(server.url + "/oauth/authorize?" + str(httpx.QueryParams(params)))
    sign_in(page)
    page.wait_for_url("**/oauth/authorize?**")
    assert "Photo Printer" in page.content()
    page.click("button[value=allow]")
    page.wait_for_url(origin + "/callback?**")
    query = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
    assert query["state"] == "third-state"
    assert query["iss"] == server.url
    response = httpx.post(
        server.url + "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": query["code"],
            "redirect_uri": origin + "/callback",
            "code_verifier": verifier,
        },
        auth=(third["client_id"], third["client_secret"]),
    )
    assert response.status_code == 200, response.text
    page.goto(server.url + "/account")
    assert "Photo Printer" in page.locator("main").inner_text()
