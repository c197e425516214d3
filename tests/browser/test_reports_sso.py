"""The reports example signs its users in through keyturn (the notes app as the
OpenID Provider) in real headless Chromium, and keyturn signs them out again.

- Sign in: reports' "Sign in with keyturn" runs the code flow (Authlib's
  Starlette client) through keyturn's own sign-in page and back; reports shows
  the user's e-mail.
- Signed out by keyturn: a sign-out on keyturn's side (its account page's sign-out
  button, or "Sign out everywhere else" from another browser) reaches reports by
  back-channel logout through keyturn's outbox; reloading reports shows the user
  signed out within a few seconds.
- RP-initiated logout: reports' own sign-out ends the keyturn session too and
  comes back to reports with the state it sent.

The shared ``browser``/``new_context``/``page`` fixtures run against the notes
app because this module replaces ``keyturn_server`` with it; reports runs beside
it on another port of 127.0.0.1.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import pytest
from tests.examples.processes import PASSWORD, ExampleProcesses, NotesServer, ReportsServer

if TYPE_CHECKING:
    from playwright.sync_api import Page, Request
    from tests.browser.conftest import NewContext

#: Seconds keyturn's outbox dispatcher may take to deliver the logout token.
DELIVERY_BOUND = 10.0


@pytest.fixture(scope="module")
def processes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleProcesses]:
    started = ExampleProcesses(tmp_path_factory.mktemp("reports-sso-browser"))
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture(scope="module")
def keyturn_server(processes: ExampleProcesses) -> NotesServer:
    """``python -m examples.notes``: keyturn as a library, the OpenID Provider."""
    return processes.notes()


@pytest.fixture(scope="module")
def reports(processes: ExampleProcesses, keyturn_server: NotesServer) -> ReportsServer:
    """``python -m examples.reports --client-file ...``, registered for its URL."""
    return processes.signed_in_reports(keyturn_server)


@pytest.fixture
def email(keyturn_server: NotesServer) -> str:
    """A fresh keyturn account (password ``PASSWORD``)."""
    return keyturn_server.register()


def path_of(page: Page) -> str:
    return urlsplit(page.url).path


def sign_in_to_keyturn(page: Page, email: str) -> None:
    """Fill in keyturn's own sign-in page."""
    assert path_of(page) == "/login"
    page.get_by_label(re.compile("e-?mail", re.IGNORECASE)).fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name=re.compile("sign in", re.IGNORECASE)).click()


def sign_in_to_reports(page: Page, reports: ReportsServer, email: str) -> None:
    """Open reports signed out, click "Sign in with keyturn", sign in at keyturn
    (unless already signed in there), land back on reports signed in."""
    page.goto(f"{reports.url}/")
    with page.expect_navigation():
        page.get_by_role("link", name="Sign in with keyturn").click()
    if not page.url.startswith(reports.url):  # else keyturn knew the browser already
        sign_in_to_keyturn(page, email)
    assert page.url == f"{reports.url}/"
    assert page.locator("strong.user").inner_text() == email


def wait_signed_out_of_reports(page: Page, reports: ReportsServer) -> float:
    """Reload reports until it shows the sign-in link; the seconds it took."""
    started = time.monotonic()
    link = page.get_by_role("link", name="Sign in with keyturn")
    while time.monotonic() - started < DELIVERY_BOUND:
        page.goto(f"{reports.url}/")
        if link.count() == 1:
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"reports still shows the user signed in after {DELIVERY_BOUND} s")


@pytest.mark.parametrize("how", ["keyturn_sign_out_button", "sign_out_everywhere_else"])
def test_signing_out_at_keyturn_signs_the_user_out_of_reports(
    page: Page,
    new_context: NewContext,
    keyturn_server: NotesServer,
    reports: ReportsServer,
    email: str,
    how: str,
) -> None:
    """Sign in to reports through keyturn's page; then end that keyturn session on
    keyturn's side (its sign-out button, or "Sign out everywhere else" in another
    browser): reports, reloaded, shows the user signed out within the bound."""
    sign_in_to_reports(page, reports, email)
    assert page.get_by_role("button", name="Sign out").is_visible()

    if how == "keyturn_sign_out_button":
        page.goto("/account")  # keyturn's page, in the same browser
        with page.expect_navigation():
            page.get_by_role("button", name="Sign out", exact=True).click()
        assert path_of(page) == "/login"
    else:
        other = new_context().new_page()  # another device of the same user
        other.goto("/login?next=/account")
        sign_in_to_keyturn(other, email)
        assert path_of(other) == "/account"
        with other.expect_navigation():
            other.get_by_role("button", name="Sign out everywhere else").click()
        other.goto("/account")
        assert other.get_by_text("You are not signed in anywhere else.").is_visible()

    assert wait_signed_out_of_reports(page, reports) < DELIVERY_BOUND
    page.goto("/")  # the notes app (keyturn's session) agrees: signed out
    assert page.get_by_role("link", name="Sign in").first.is_visible()


def test_signing_out_of_reports_signs_out_of_keyturn_and_comes_back(
    page: Page, keyturn_server: NotesServer, reports: ReportsServer, email: str
) -> None:
    """Reports' sign-out is RP-initiated logout: the browser goes to keyturn's
    end_session_endpoint with the ID token as hint and a state, keyturn ends its
    session without asking (the hint is valid) and sends the browser back to
    reports with that state, which reports accepts once."""
    sign_in_to_reports(page, reports, email)
    sent: list[str] = []

    def remember(request: Request) -> None:
        if urlsplit(request.url).path == "/oauth/logout":
            sent.append(request.url)

    page.on("request", remember)
    with page.expect_navigation(url=re.compile(re.escape(f"{reports.url}/auth/signed-out"))):
        page.get_by_role("button", name="Sign out").click()
    assert page.get_by_text("You are signed out of reports and of keyturn.").is_visible()
    [logout_url] = sent
    asked = parse_qs(urlsplit(logout_url).query)
    assert asked["post_logout_redirect_uri"] == [f"{reports.url}/auth/signed-out"]
    assert asked["id_token_hint"][0].count(".") == 2
    assert parse_qs(urlsplit(page.url).query)["state"] == asked["state"]

    page.reload()  # the state was good once
    assert page.get_by_role("heading", name="Sign-out not confirmed").is_visible()
    page.goto(f"{reports.url}/")
    assert page.get_by_role("link", name="Sign in with keyturn").is_visible()
    page.goto("/")  # keyturn's session has ended too
    assert page.get_by_role("link", name="Sign in").first.is_visible()
    page.goto("/account")
    assert path_of(page) == "/login"
