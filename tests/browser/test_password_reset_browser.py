"""Forgot password end to end in real headless Chromium, with the mail read from a
real SMTP server (aiosmtpd on loopback) that ``keyturn serve`` delivers to (#14).

A person signs in in one browser, forgets the password in another, follows the
mailed link, sets a new password, and the first browser's session is dead.
Locators use what a person sees (labels, link and button names).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from email.message import Message
from typing import TYPE_CHECKING

import pytest
from aiosmtpd.controller import Controller
from tests.live import LiveServer, LiveServers
from tests.unit.mail.smtp_support import Recorder, free_port

if TYPE_CHECKING:
    from playwright.sync_api import Page
    from tests.browser.conftest import NewContext

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "a brand new passphrase"
_LINK = re.compile(r"(http://127\.0\.0\.1:\d+/password/reset\?token=[A-Za-z0-9_-]{43})")


@pytest.fixture(scope="module")
def mailbox() -> Iterator[tuple[Recorder, int]]:
    """A real SMTP server on loopback and what it received."""
    recorder, port = Recorder(), free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield recorder, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def keyturn_server(  # overrides the conftest's: this one mails through the SMTP server
    tmp_path_factory: pytest.TempPathFactory, mailbox: tuple[Recorder, int]
) -> Iterator[LiveServer]:
    servers = LiveServers(tmp_path_factory.mktemp("browser-mail"))
    try:
        yield servers("--smtp-url", f"smtp://127.0.0.1:{mailbox[1]}")
    finally:
        servers.stop_all()


def wait_for_mail(recorder: Recorder, to: str, subject: str, within: float = 20.0) -> Message:
    """The first message to ``to`` whose subject contains ``subject``."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for message in recorder.messages:
            if message["To"] == to and subject in str(message["Subject"]):
                return message
        time.sleep(0.05)
    raise AssertionError(f"no {subject!r} mail to {to}")


def sign_in(page: Page, email: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(password)
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in").click()


def test_forgot_password_by_mail_ends_the_other_browsers_session(
    new_context: NewContext, keyturn_server: LiveServer, mailbox: tuple[Recorder, int]
) -> None:
    """Forgot password -> mail over SMTP -> link -> new password: the old session in a
    second browser is dead, the old password fails, the new one signs in."""
    recorder = mailbox[0]
    email = f"user-{uuid.uuid4().hex[:10]}@example.com"
    keyturn_server.add_user(email, PASSWORD)
    first = new_context().new_page()
    sign_in(first, email, PASSWORD)
    assert first.url.endswith("/account")

    second = new_context().new_page()
    second.goto("/login")
    second.get_by_role("link", name="Forgot your password?").click()
    second.get_by_label("E-mail address").fill(email)
    with second.expect_navigation():
        second.get_by_role("button", name="Send the link").click()
    assert second.get_by_role("heading", name="Check your e-mail").is_visible()

    mail = wait_for_mail(recorder, email, "Reset your")
    found = _LINK.search(mail.as_string())
    assert found is not None
    second.goto(found.group(1))
    second.get_by_label("New password").fill(NEW_PASSWORD)
    with second.expect_navigation():
        second.get_by_role("button", name="Set the password").click()
    assert second.get_by_role("heading", name="Your password is set").is_visible()

    first.goto("/account")
    assert "/login" in first.url  # the first browser's session is dead

    sign_in(second, email, PASSWORD)
    assert "/login" in second.url  # the old password no longer works
    sign_in(second, email, NEW_PASSWORD)
    assert second.url.endswith("/account")
    wait_for_mail(recorder, email, "password was reset")


def test_the_used_link_shows_that_it_no_longer_works(
    new_context: NewContext, keyturn_server: LiveServer, mailbox: tuple[Recorder, int]
) -> None:
    """Following a spent reset link and submitting says so, with a way to ask again."""
    recorder = mailbox[0]
    email = f"user-{uuid.uuid4().hex[:10]}@example.com"
    keyturn_server.add_user(email, PASSWORD)
    page = new_context().new_page()
    page.goto("/password/forgot")
    page.get_by_label("E-mail address").fill(email)
    with page.expect_navigation():
        page.get_by_role("button", name="Send the link").click()
    found = _LINK.search(wait_for_mail(recorder, email, "Reset your").as_string())
    assert found is not None
    for expected in ("Your password is set", "This link does not work"):
        page.goto(found.group(1))
        page.get_by_label("New password").fill(NEW_PASSWORD)
        with page.expect_navigation():
            page.get_by_role("button", name="Set the password").click()
        assert page.get_by_role("heading", name=expected).is_visible()
    assert page.get_by_role("link", name="Ask for a new link").is_visible()


def test_the_account_page_changes_the_password_without_javascript(
    new_context: NewContext, keyturn_server: LiveServer, mailbox: tuple[Recorder, int]
) -> None:
    """With JavaScript off: the labelled change-password form on /account works, the
    new password signs in, and the owner is mailed a notice."""
    recorder = mailbox[0]
    email = f"user-{uuid.uuid4().hex[:10]}@example.com"
    keyturn_server.add_user(email, PASSWORD)
    page = new_context(java_script_enabled=False).new_page()
    sign_in(page, email, PASSWORD)
    form = page.locator("form[action='/account/password']")
    form.get_by_label("Current password").fill(PASSWORD)
    form.get_by_label("New password").fill(NEW_PASSWORD)
    with page.expect_navigation():
        form.get_by_role("button", name="Change the password").click()
    assert page.url.endswith("/account")
    page.context.clear_cookies()
    sign_in(page, email, NEW_PASSWORD)
    assert page.url.endswith("/account")
    wait_for_mail(recorder, email, "password was changed")
