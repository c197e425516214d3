"""Multi-factor sign-in in real headless Chromium (issue #15, item 6).

- TOTP: set up an authenticator app on ``/account`` (codes computed with pyotp
  from the key the page shows), sign in again through ``/login`` ->
  ``/login/mfa``, and sign in with a recovery code.
- Passkeys through the DevTools protocol's virtual authenticator
  (``WebAuthn.addVirtualAuthenticator`` over a Playwright CDP session): add one
  on ``/account``, sign in with it alone, use it as the second factor, remove it.

The server runs with ``--issuer http://localhost:PORT`` and Chromium browses
``http://localhost:PORT``: an IP address is not a valid WebAuthn RP ID, and
localhost is a secure context (so ``__Host-`` cookies work without TLS).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pyotp
import pytest
from tests.browser.conftest import TIMEOUT_MS
from tests.live import LiveServer, LiveServers
from tests.services import free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def localhost_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """``keyturn serve`` whose issuer (and so RP ID) is ``localhost``."""
    servers = LiveServers(tmp_path_factory.mktemp("mfa-live"))
    port = free_port()
    try:
        yield servers("--issuer", f"http://localhost:{port}", port=port)
    finally:
        servers.stop_all()


@pytest.fixture
def email(localhost_server: LiveServer) -> str:
    """A fresh account on the server."""
    address = f"mfa-{uuid.uuid4().hex[:10]}@example.com"
    localhost_server.add_user(address, PASSWORD)
    return address


@pytest.fixture
def context(browser: Browser, localhost_server: LiveServer) -> Iterator[BrowserContext]:
    """A fresh profile browsing http://localhost:PORT; other hosts are refused."""
    base = f"http://localhost:{localhost_server.port}"
    opened = browser.new_context(base_url=base)
    opened.set_default_timeout(TIMEOUT_MS)
    opened.route(re.compile(r"^(?!http://localhost[:/])[a-z]+://"), lambda route: route.abort())
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A tab in ``context``."""
    return context.new_page()


def virtual_authenticator(context: BrowserContext, page: Page) -> Any:
    """A platform authenticator with resident keys and user verification (a
    passkey-capable laptop), that consents without a person."""
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    return cdp


def password_step(page: Page, email: str, next_path: str = "") -> None:
    page.goto("/login" + (f"?next={next_path}" if next_path else ""))
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in", exact=True).click()


def sign_out(page: Page) -> None:
    page.goto("/account")
    with page.expect_navigation():
        page.get_by_role("button", name="Sign out", exact=True).click()
    assert page.url.endswith("/login")


def set_up_totp(page: Page) -> tuple[str, list[str]]:
    """Turn the authenticator app on from /account: the key and the recovery codes."""
    page.goto("/account")
    with page.expect_navigation():
        page.get_by_role("button", name="Set up an authenticator app").click()
    assert page.locator("figure.qr svg").count() == 1  # the QR code, inline SVG
    secret = page.locator("[data-totp-secret]").inner_text().strip()
    page.get_by_label("The 6-digit code the app shows").fill(pyotp.TOTP(secret).now())
    with page.expect_navigation():
        page.get_by_role("button", name="Turn on").click()
    codes = [item.inner_text().strip() for item in page.locator("[data-recovery-codes] li").all()]
    return secret, codes


def test_totp_set_up_then_two_step_sign_in_and_recovery_code(page: Page, email: str) -> None:
    """Set up TOTP on /account, sign in with a pyotp code on /login/mfa (next kept),
    then with a recovery code; the account then shows 9 codes left."""
    password_step(page, email)
    secret, codes = set_up_totp(page)
    assert len(codes) == 10
    sign_out(page)

    password_step(page, email, next_path="/account%3Fsee%3Dmfa")
    assert page.url.endswith("/login")  # the form was answered in place: no session yet
    assert page.get_by_role("heading", name="Two-step verification").is_visible()
    # The next step's code: the current one was spent confirming the set-up.
    page.get_by_label("Code from your authenticator app").fill(
        pyotp.TOTP(secret).at(time.time() + 30)
    )
    with page.expect_navigation():
        page.get_by_role("button", name="Verify").click()
    assert page.url.endswith("/account?see=mfa")
    sign_out(page)

    password_step(page, email)
    page.get_by_text("Lost your device? Use a recovery code").click()
    page.get_by_label("Recovery code").fill(codes[0])
    with page.expect_navigation():
        page.get_by_role("button", name="Use recovery code").click()
    assert page.url.endswith("/account")
    assert page.locator("[data-recovery-codes-left]").inner_text() == "9"


def test_passkey_added_used_alone_and_as_second_factor_then_removed(
    context: BrowserContext, page: Page, email: str
) -> None:
    """With Chromium's virtual authenticator: add a passkey on /account, sign in
    with it and no password, use it as the second factor after the password, and
    remove it."""
    cdp = virtual_authenticator(context, page)
    password_step(page, email)
    page.goto("/account")
    page.get_by_label("Name for a new passkey").fill("Test laptop")
    with page.expect_navigation():
        page.get_by_role("button", name="Add a passkey").click()
    row = page.locator("tr[data-passkey]")
    assert row.count() == 1 and "Test laptop" in row.inner_text()
    assert "never" in row.inner_text()  # not used yet
    sign_out(page)

    # Passwordless: the discoverable credential names the account by itself.
    page.get_by_role("button", name="Use a passkey instead of a password").click()
    page.wait_for_url(re.compile(r"/account$"))
    assert email in page.locator("main").inner_text()
    assert "never" not in page.locator("tr[data-passkey]").inner_text()
    sign_out(page)

    # As the second factor after the password.
    password_step(page, email)
    with page.expect_navigation():
        page.get_by_role("button", name="Use a passkey").click()
    assert page.url.endswith("/account")

    with page.expect_navigation():
        page.get_by_role("button", name=re.compile("Remove Test laptop")).click()
    assert page.locator("tr[data-passkey]").count() == 0
    assert cdp is not None
