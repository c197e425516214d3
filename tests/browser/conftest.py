"""Fixtures for browser tests: real headless Chromium against a real ``keyturn serve``.

- ``browser`` (module): Debian's Chromium (``/usr/bin/chromium``, or
  ``$KEYTURN_TEST_CHROMIUM``) driven by Playwright's sync API. Playwright's own
  browser downloads are never used. Without Chromium or the ``playwright``
  package the tests are skipped locally and fail under ``CI=true``.
- ``keyturn_server`` (module): ``keyturn serve`` on a free port and a fresh
  SQLite file (``tests/live.py``); ``http://127.0.0.1`` is a secure context for
  Chromium, so the ``__Host-`` session cookie works without TLS.
- ``account`` (function): a fresh user made with ``keyturn user add
  --password-stdin`` against the server's database.
- ``new_context`` (function): ``new_context()`` opens an isolated browser
  profile (its own cookie jar) bound to the server; all are closed at teardown.
  ``context`` and ``page`` are the first such profile and a tab in it.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from tests.live import LiveServer, LiveServers

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page

CHROMIUM = Path(os.environ.get("KEYTURN_TEST_CHROMIUM", "/usr/bin/chromium"))

#: No sandbox (containers, root), and nothing that phones home or needs a GPU.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-sync",
]

#: Milliseconds Playwright waits for a page, a locator or a navigation.
TIMEOUT_MS = 15_000

#: Only the server under test is reachable; anything else fails at once, so a
#: redirect to another site shows up as a wrong URL instead of a slow DNS timeout.
_OTHER_HOSTS = re.compile(r"^(?!https?://127\.0\.0\.1[:/])[a-z]+://")


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: browser tests must run in CI)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium, launched once per test module."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
        raise  # unreachable: _unavailable always raises
    if not CHROMIUM.is_file():
        _unavailable(f"{CHROMIUM} not found (apt-get install chromium)")
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
        except Error as exc:
            _unavailable(f"{CHROMIUM} did not start: {exc}")
            raise
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def keyturn_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One ``keyturn serve`` on a fresh SQLite file for the module's tests."""
    servers = LiveServers(tmp_path_factory.mktemp("browser-live"))
    try:
        yield servers()
    finally:
        servers.stop_all()


@dataclass(frozen=True)
class Account:
    """A user that exists on ``keyturn_server``."""

    email: str
    password: str


@pytest.fixture
def account(keyturn_server: LiveServer) -> Account:
    """A fresh account, created through ``keyturn user add --password-stdin``."""
    created = Account(f"user-{uuid.uuid4().hex[:10]}@example.com", "correct horse battery staple")
    keyturn_server.add_user(created.email, created.password)
    return created


NewContext = Callable[..., "BrowserContext"]


@pytest.fixture
def new_context(browser: Browser, keyturn_server: LiveServer) -> Iterator[NewContext]:
    """``new_context(**options)``: a fresh browser profile with ``base_url`` set to the
    server; requests to any other host are aborted. Closed at teardown."""
    opened: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        options.setdefault("base_url", keyturn_server.url)
        context = browser.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        context.route(_OTHER_HOSTS, lambda route: route.abort())
        opened.append(context)
        return context

    try:
        yield make
    finally:
        for context in opened:
            context.close()


@pytest.fixture
def context(new_context: NewContext) -> BrowserContext:
    """A fresh browser profile bound to the server."""
    return new_context()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A tab in ``context``."""
    return context.new_page()
