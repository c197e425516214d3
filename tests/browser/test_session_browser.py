"""Browser sessions end to end, in real headless Chromium (issue #3, item 10).

What SPEC "Browser pages" and "Sessions" promise a person with a browser: sign in
through the ``/login`` form, get an ``HttpOnly; Secure; SameSite=Lax`` host cookie
that page scripts cannot read, see and end sign-ins on ``/account``, and be sent
back to ``/login`` once signed out. Locators use what a person sees (labels,
button names), so the tests survive markup changes that keep the page usable.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, quote, urlsplit

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Locator, Page, Response
    from tests.browser.conftest import Account, NewContext

SESSION_COOKIE = "__Host-keyturn_session"
SCREENSHOT = Path("/tmp/keyturn-account.png")

EMAIL_LABEL = re.compile(r"e-?mail", re.IGNORECASE)
PASSWORD_LABEL = re.compile(r"password", re.IGNORECASE)
SIGN_IN_BUTTON = re.compile(r"sign in|log ?in", re.IGNORECASE)
EVERYWHERE_ELSE_BUTTON = re.compile(r"everywhere else", re.IGNORECASE)


def path_of(url: str) -> str:
    """The path of ``url`` (``/account`` for ``http://127.0.0.1:1234/account``)."""
    return urlsplit(url).path


def is_login_post(response: Response) -> bool:
    """Whether ``response`` answers the sign-in form's ``POST /login``."""
    return response.request.method == "POST" and path_of(response.url) == "/login"


def submit_login(page: Page, email: str, password: str) -> Response:
    """Fill the labelled fields of the page's sign-in form, submit it, return the POST's
    own response (a 303 on success, the re-rendered form on failure)."""
    page.get_by_label(EMAIL_LABEL).fill(email)
    page.get_by_label(PASSWORD_LABEL).fill(password)
    with page.expect_navigation(), page.expect_response(is_login_post) as posted:
        page.get_by_role("button", name=SIGN_IN_BUTTON).click()
    return posted.value


def sign_in(page: Page, account: Account, *, next_url: str | None = None) -> Response:
    """Open ``/login`` (with ``?next=``), sign in as ``account``; the POST's response."""
    page.goto("/login" if next_url is None else f"/login?next={quote(next_url, safe='')}")
    return submit_login(page, account.email, account.password)


def session_cookie(context: BrowserContext) -> dict[str, object] | None:
    """The session cookie in ``context``'s cookie jar, if any."""
    for cookie in context.cookies():
        if cookie.get("name") == SESSION_COOKIE:
            return dict(cookie)
    return None


def sign_in_row(page: Page, sign_in_id: str) -> Locator:
    """Whatever on ``/account`` stands for the sign-in ``sign_in_id`` (the ``id`` of
    ``GET /auth/sessions``): an element carrying it as ``data-session-id``, or a
    form that posts it (hidden field or action URL)."""
    return page.locator(
        f'[data-session-id="{sign_in_id}"], form:has(input[value="{sign_in_id}"]), '
        f'form[action*="{sign_in_id}"]'
    )


def sign_ins(context: BrowserContext) -> list[dict[str, object]]:
    """``GET /auth/sessions`` with ``context``'s cookie: the caller's active sign-ins."""
    response = context.request.get("/auth/sessions")
    assert response.status == 200, response.text()
    listed = response.json()
    assert isinstance(listed, list)
    return listed


def test_sign_in_sets_a_host_only_httponly_cookie_and_sign_out_ends_it(
    page: Page, context: BrowserContext, account: Account
) -> None:
    """Signing in lands on /account with an HttpOnly/Secure/Lax host cookie scripts cannot
    read; the sign-out button returns to /login and /account then asks to sign in again."""
    response = sign_in(page, account)
    assert response.status == 303
    assert path_of(page.url) == "/account"
    assert account.email in page.locator("body").inner_text()

    cookie = session_cookie(context)
    assert cookie is not None, context.cookies()
    assert cookie["httpOnly"] is True
    assert cookie["secure"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/"
    assert cookie["domain"] == "127.0.0.1"  # host-only: no Domain attribute
    assert "keyturn_session" not in page.evaluate("document.cookie")
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    logout_form = page.locator('form[action$="/logout"]')
    assert logout_form.count() == 1, "expected one sign-out form posting to /logout"
    with page.expect_navigation():
        logout_form.get_by_role("button").click()
    assert path_of(page.url) == "/login"
    assert session_cookie(context) is None

    page.goto("/account")
    landed = urlsplit(page.url)
    assert landed.path == "/login"
    assert parse_qs(landed.query).get("next") == ["/account"]


def test_wrong_password_gets_401_and_the_same_message_as_an_unknown_account(
    page: Page, context: BrowserContext, account: Account
) -> None:
    """A wrong password re-renders the form with 401 and a generic message identical to
    the one for an e-mail that has no account, sets no session, and clears the password."""
    page.goto("/login")
    blank_form = page.locator("body").inner_text()

    wrong = submit_login(page, account.email, "not the right password at all")
    assert wrong.status == 401
    assert path_of(page.url) == "/login"
    wrong_text = page.locator("body").inner_text()
    assert wrong_text != blank_form, "the failed sign-in shows no message"
    assert page.get_by_label(PASSWORD_LABEL).input_value() == ""
    assert session_cookie(context) is None

    page.goto("/login")
    unknown = submit_login(page, "nobody-" + account.email, "not the right password at all")
    assert unknown.status == 401
    assert page.locator("body").inner_text() == wrong_text
    assert session_cookie(context) is None


def test_account_page_lists_both_sign_ins_and_ends_the_other_one(
    new_context: NewContext, account: Account
) -> None:
    """With two browsers signed in, the first one's /account lists both; its sign-out
    button on the second one's row ends that session and leaves its own."""
    first, second = new_context(), new_context()
    page_a, page_b = first.new_page(), second.new_page()
    sign_in(page_a, account)
    sign_in(page_b, account)
    assert path_of(page_b.url) == "/account"

    listed = sign_ins(first)
    browsers = [item for item in listed if item["kind"] == "browser"]
    assert len(browsers) == 2, listed
    (other,) = [item for item in browsers if not item["current"]]

    page_a.goto("/account")
    for item in browsers:
        assert sign_in_row(page_a, str(item["id"])).count() >= 1, f"no row on /account: {item}"
    row = sign_in_row(page_a, str(other["id"]))
    with page_a.expect_navigation():
        row.get_by_role("button").first.click()

    page_b.goto("/account")
    assert path_of(page_b.url) == "/login"
    page_a.goto("/account")
    assert path_of(page_a.url) == "/account"
    assert len(sign_ins(first)) == 1


def test_sign_out_everywhere_else_ends_other_browsers_only(
    new_context: NewContext, account: Account
) -> None:
    """ "Sign out everywhere else" ends every other browser's session and keeps this one."""
    here, *elsewhere = [new_context().new_page() for _ in range(3)]
    for page in (here, *elsewhere):
        sign_in(page, account)

    here.goto("/account")
    with here.expect_navigation():
        here.get_by_role("button", name=EVERYWHERE_ELSE_BUTTON).click()

    for page in elsewhere:
        page.goto("/account")
        assert path_of(page.url) == "/login"
    here.goto("/account")
    assert path_of(here.url) == "/account"
    assert len(sign_ins(here.context)) == 1


def test_signed_out_visit_to_account_returns_there_after_sign_in(
    page: Page, account: Account
) -> None:
    """Opening /account signed out goes to /login?next=/account and, after signing in,
    back to /account."""
    page.goto("/account")
    assert path_of(page.url) == "/login"
    response = submit_login(page, account.email, account.password)
    assert response.status == 303
    assert path_of(response.headers["location"]) == "/account"
    assert path_of(page.url) == "/account"


def test_same_origin_next_path_is_honoured(page: Page, account: Account) -> None:
    """A same-origin relative ``next`` path is where a successful sign-in lands."""
    response = sign_in(page, account, next_url="/healthz")
    assert response.status == 303
    location = urlsplit(response.headers["location"])
    assert location.netloc in ("", urlsplit(page.url).netloc)
    assert location.path == "/healthz"
    assert path_of(page.url) == "/healthz"


@pytest.mark.parametrize(
    "next_url",
    ["https://evil.example/", "//evil.example/", "/\\evil.example/", "javascript:alert(1)"],
    ids=["absolute", "scheme-relative", "backslash", "javascript"],
)
def test_off_site_next_is_ignored(page: Page, account: Account, next_url: str) -> None:
    """A ``next`` that leaves the site is ignored: the sign-in lands on /account."""
    response = sign_in(page, account, next_url=next_url)
    assert response.status == 303
    location = urlsplit(response.headers["location"])
    assert location.netloc in ("", urlsplit(page.url).netloc)
    assert location.path == "/account"
    assert urlsplit(page.url).netloc.startswith("127.0.0.1")
    assert path_of(page.url) == "/account"
