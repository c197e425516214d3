"""A single-page app on another origin, in real headless Chromium (issue #5, item 2).

``keyturn serve --refresh-cookie --cors-origins <spa>`` on one port; the SPA's page
on another (same site, another origin, served by a tiny HTTP server here). The page
signs in with the password grant asking for the refresh cookie, cannot see that
cookie from script, and refreshes with ``fetch(..., {credentials: "include"})``
plus the ``X-CSRF-Token`` proof to get a new access token.
"""

from __future__ import annotations

import http.server
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from tests.browser.conftest import TIMEOUT_MS
from tests.live import LiveServer, LiveServers
from tests.support import serve_in_thread

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

REFRESH_COOKIE = "__Secure-keyturn_refresh"
EMAIL = "spa-user@example.com"
PASSWORD = "correct horse battery staple"

#: Cookies are scoped by host and path, not port, and this page's path lies inside
#: the refresh cookie's Path: were the cookie readable by scripts, ``document.cookie``
#: here would show it.
SPA_PATH = "/oauth/token/spa.html"

SPA_SCRIPT = """
window.keyturn = "%(keyturn)s";
window.state = {accessToken: null, refreshCsrf: null};
const form = (fields) => ({
  method: "POST",
  credentials: "include",
  headers: {"Content-Type": "application/x-www-form-urlencoded"},
  body: new URLSearchParams(fields),
});
window.signIn = async (username, password) => {
  const response = await fetch(keyturn + "/oauth/token", form({
    grant_type: "password", username, password, refresh_cookie: "true",
  }));
  const body = await response.json();
  state.accessToken = body.access_token;
  state.refreshCsrf = body.refresh_csrf;
  return {status: response.status, keys: Object.keys(body).sort()};
};
window.refresh = async (withProof = true) => {
  const request = form({grant_type: "refresh_token"});
  if (withProof) request.headers["X-CSRF-Token"] = state.refreshCsrf;
  const response = await fetch(keyturn + "/oauth/token", request);
  const body = await response.json();
  if (response.ok) {
    state.accessToken = body.access_token;
    state.refreshCsrf = body.refresh_csrf;
  }
  return {status: response.status, keys: Object.keys(body).sort(), error: body.error || null};
};
window.whoami = async () => {
  const response = await fetch(keyturn + "/auth/whoami", {
    headers: {Authorization: "Bearer " + state.accessToken},
  });
  return {status: response.status, email: (await response.json()).email || null};
};
"""


class _Page(http.server.BaseHTTPRequestHandler):
    """Serves the SPA's one page at any path."""

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
def spa_origin() -> Iterator[tuple[str, type[_Page]]]:
    """The SPA's own origin: a static server on another port of 127.0.0.1."""
    handler = type("SpaPage", (_Page,), {})
    with serve_in_thread(handler) as origin:
        yield origin, handler


@pytest.fixture(scope="module")
def spa_server(
    tmp_path_factory: pytest.TempPathFactory, spa_origin: tuple[str, type[_Page]]
) -> Iterator[LiveServer]:
    """``keyturn serve`` in refresh-cookie mode, letting the SPA's origin call it."""
    origin, handler = spa_origin
    servers = LiveServers(tmp_path_factory.mktemp("spa-live"))
    try:
        # The SPA page signs in with the password grant, off by default (#12).
        server = servers("--refresh-cookie", "--cors-origins", origin, "--password-grant")
        server.add_user(EMAIL, PASSWORD)
        handler.html = (
            "<!doctype html><title>SPA</title><script>"
            + SPA_SCRIPT % {"keyturn": server.url}
            + "</script>"
        ).encode()
        yield server
    finally:
        servers.stop_all()


@pytest.fixture
def spa_page(
    browser: Browser, spa_origin: tuple[str, type[_Page]], spa_server: LiveServer
) -> Iterator[Page]:
    """The SPA open in a fresh browser profile."""
    context = browser.new_context()
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        page.goto(spa_origin[0] + SPA_PATH)
        yield page
    finally:
        context.close()


def refresh_cookie(page: Page) -> dict[str, Any]:
    """The refresh cookie in the page's cookie jar."""
    found = [dict(c) for c in page.context.cookies() if c.get("name") == REFRESH_COOKIE]
    assert len(found) == 1, page.context.cookies()
    return found[0]


def test_spa_signs_in_keeps_the_refresh_token_from_scripts_and_refreshes(spa_page: Page) -> None:
    """Password grant with the refresh cookie, no refresh token for scripts to read,
    then a credentialed cross-origin refresh with the proof: a new access token."""
    signed_in = spa_page.evaluate("([u, p]) => signIn(u, p)", [EMAIL, PASSWORD])
    assert signed_in == {
        "status": 200,
        "keys": ["access_token", "expires_in", "refresh_csrf", "scope", "token_type"],
    }
    cookie = refresh_cookie(spa_page)
    assert cookie["httpOnly"] is True and cookie["secure"] is True
    assert cookie["sameSite"] == "Strict" and cookie["path"] == "/oauth/token"
    assert str(cookie["value"]).startswith("ktr_")

    # Scripts here see an ordinary cookie on the same path, never the refresh cookie.
    spa_page.evaluate("() => { document.cookie = 'visible=1; path=/oauth/token'; }")
    seen = spa_page.evaluate("() => document.cookie")
    assert "visible=1" in seen
    assert "keyturn_refresh" not in seen and str(cookie["value"]) not in seen

    first_access = spa_page.evaluate("() => state.accessToken")
    assert spa_page.evaluate("() => whoami()") == {"status": 200, "email": EMAIL}

    # Without the proof the cookie alone gets nothing (and is not spent).
    refused = spa_page.evaluate("() => refresh(false)")
    assert refused["status"] == 403 and refused["error"] == "csrf_failed"
    assert refresh_cookie(spa_page)["value"] == cookie["value"]

    refreshed = spa_page.evaluate("() => refresh()")
    assert refreshed == {
        "status": 200,
        "keys": ["access_token", "expires_in", "refresh_csrf", "scope", "token_type"],
        "error": None,
    }
    assert spa_page.evaluate("() => state.accessToken") != first_access
    assert refresh_cookie(spa_page)["value"] != cookie["value"]  # rotated
    assert spa_page.evaluate("() => whoami()") == {"status": 200, "email": EMAIL}
