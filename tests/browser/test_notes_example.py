"""The notes example (examples/notes) in real headless Chromium (issue #5, item 4).

A person registers through keyturn's own pages served by the notes app, lands on
the notes page, writes a note with the server-rendered form (which carries the
session's CSRF token), sees it listed, signs out, signs in again and still sees
it. The shared ``browser``/``new_context``/``page`` fixtures run against the
notes app because this module replaces ``keyturn_server`` with it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
from tests.examples.processes import PASSWORD, ExampleProcesses, NotesServer

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page

SESSION_COOKIE = "__Host-keyturn_session"


@pytest.fixture(scope="module")
def keyturn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NotesServer]:
    """``python -m examples.notes`` on a free port and fresh SQLite files."""
    processes = ExampleProcesses(tmp_path_factory.mktemp("notes-browser"))
    try:
        yield processes.notes()
    finally:
        processes.stop_all()


def path_of(page: Page) -> str:
    return urlsplit(page.url).path


def add_note(page: Page, title: str, body: str) -> None:
    page.get_by_label("Title").fill(title)
    page.get_by_label("Text").fill(body)
    with page.expect_navigation():
        page.get_by_role("button", name="Add note").click()


def test_register_sign_in_and_write_a_note_in_the_notes_web_ui(
    page: Page, context: BrowserContext, keyturn_server: NotesServer
) -> None:
    """Register from the notes home page, add a note, see it listed; sign out and
    back in through keyturn's /login and the note is still there."""
    email = f"browser-{uuid.uuid4().hex[:8]}@example.com"

    page.goto("/")
    page.get_by_role("link", name="create an account").click()
    assert path_of(page) == "/register"
    page.get_by_label(re.compile("e-?mail", re.IGNORECASE)).fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name="Create account").click()
    assert path_of(page) == "/"  # ?next=/ brought the new user back to the notes
    assert page.get_by_role("heading", name="Your notes").is_visible()
    assert email in page.locator("header").inner_text()
    cookie = next(c for c in context.cookies() if c.get("name") == SESSION_COOKIE)
    assert cookie.get("httpOnly") is True

    add_note(page, "Buy milk", "two litres")
    assert path_of(page) == "/"
    listed = page.locator("ul.notes li")
    assert listed.count() == 1
    assert listed.first.inner_text() == "Buy milk: two litres"

    with page.expect_navigation():
        page.get_by_role("button", name="Sign out").click()
    assert path_of(page) == "/login"
    page.goto("/")
    assert page.get_by_role("link", name="Sign in").is_visible()
    assert "Buy milk" not in page.content()

    page.get_by_role("link", name="Sign in").click()
    page.get_by_label(re.compile("e-?mail", re.IGNORECASE)).fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation():
        page.get_by_role("button", name=re.compile("sign in", re.IGNORECASE)).click()
    assert path_of(page) == "/"
    add_note(page, "Call Ada", "")
    assert [item.inner_text() for item in page.locator("ul.notes li").all()] == [
        "Call Ada",
        "Buy milk: two litres",
    ]
