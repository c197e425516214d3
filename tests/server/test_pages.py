"""The HTML pages (SPEC "Browser pages"): sign in, register, account, sign out."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from html.parser import HTMLParser

import httpx
import pytest
from fastapi import FastAPI
from tests.server.http_support import BASE
from tests.support import set_cookies

from keyturn.settings import Settings
from keyturn.web.authn.cookies import PRE_SESSION_COOKIE, SESSION_COOKIE

MakeClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]

PASSWORD = "correct horse battery staple"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
GENERIC = "The e-mail address or password is incorrect."


class Form(HTMLParser):
    """Collects inputs, labels and a few document facts from a page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.inputs: list[dict[str, str | None]] = []
        self.label_targets: set[str] = set()
        self.tags: list[str] = []
        self.html_lang: str | None = None
        self.inline_styles = 0
        self.script_sources: list[str | None] = []
        self.inline_script_text = ""
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append(tag)
        if "style" in attributes or any(name.startswith("on") for name in attributes):
            self.inline_styles += 1
        if tag == "html":
            self.html_lang = attributes.get("lang")
        elif tag == "input":
            self.inputs.append(attributes)
        elif tag == "label" and attributes.get("for"):
            self.label_targets.add(str(attributes["for"]))
        elif tag == "script":
            self.script_sources.append(attributes.get("src"))
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.inline_script_text += data

    def value(self, name: str) -> str | None:
        for attributes in self.inputs:
            if attributes.get("name") == name:
                return attributes.get("value")
        return None


@pytest.fixture
def app(make_app: Callable[..., FastAPI]) -> FastAPI:
    """The keyturn app on a memory store."""
    return make_app()


@pytest.fixture
async def client(make_client: MakeClient, app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A browser with a registered account, signed out."""
    async with make_client(app=app, base_url=BASE) as opened:
        opened.headers["User-Agent"] = FIREFOX
        response = await opened.post(
            "/auth/register", json={"email": "a@example.com", "password": PASSWORD}
        )
        assert response.status_code == 201
        yield opened


async def form_token(client: httpx.AsyncClient, path: str = "/login") -> str:
    token = Form((await client.get(path)).text).value("csrf_token")
    assert token
    return token


async def submit_login(
    client: httpx.AsyncClient,
    email: str = "a@example.com",
    password: str = PASSWORD,
    **fields: str,
) -> httpx.Response:
    token = await form_token(client)
    data = {"email": email, "password": password, "csrf_token": token, **fields}
    return await client.post("/login", data=data)


async def account_token(client: httpx.AsyncClient) -> str:
    token = Form((await client.get("/account")).text).value("csrf_token")
    assert token
    return token


def assert_accessible_page(response: httpx.Response) -> Form:
    """lang, <main>, a label for every visible input, no inline script or style
    (scripts only as files from /static, allowed by the CSP's script-src 'self'),
    the stylesheet, and the security headers of HTML responses."""
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = Form(response.text)
    assert page.html_lang == "en"
    assert "main" in page.tags and "style" not in page.tags
    assert all(src and src.startswith("/static/") for src in page.script_sources)
    assert not page.inline_script_text.strip()
    assert page.inline_styles == 0
    for field in page.inputs:
        if field.get("type") != "hidden":
            assert field.get("id") in page.label_targets, field
    assert '<link rel="stylesheet" href="/static/keyturn.css">' in response.text
    csp = response.headers["content-security-policy"]
    for directive in ("frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"):
        assert directive in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert "strict-transport-security" in response.headers
    return page


# --- sign in --------------------------------------------------------------------------------


async def test_login_page_is_an_accessible_form(client: httpx.AsyncClient) -> None:
    """GET /login: email, password, remember, hidden csrf_token; labels, lang, main, CSP."""
    response = await client.get("/login")
    assert response.status_code == 200
    page = assert_accessible_page(response)
    names = {field.get("name"): field.get("type") for field in page.inputs}
    assert names == {
        "csrf_token": "hidden",
        "email": "email",
        "password": "password",
        "remember": "checkbox",
    }
    assert 'method="post" action="/login"' in response.text


async def test_login_page_sets_the_pre_session_cookie_it_embeds(
    client: httpx.AsyncClient,
) -> None:
    """The form's token equals a __Host- HttpOnly Secure SameSite=Strict cookie, reused
    across page loads so two open tabs both work."""
    first = await client.get("/login")
    value, attributes = set_cookies(first)[PRE_SESSION_COOKIE]
    assert Form(first.text).value("csrf_token") == value
    assert len(value) >= 32
    assert "httponly" in attributes and "secure" in attributes
    assert attributes["samesite"].lower() == "strict" and attributes["path"] == "/"
    assert "domain" not in attributes and "max-age" not in attributes
    second = await client.get("/login")
    assert Form(second.text).value("csrf_token") == value


async def test_form_login_signs_in_and_redirects_to_the_account(
    client: httpx.AsyncClient,
) -> None:
    """Success: 303 to /account with the session cookie; /account then shows the user."""
    response = await submit_login(client)
    assert response.status_code == 303
    assert response.headers["location"] == "/account"
    secret, attributes = set_cookies(response)[SESSION_COOKIE]
    assert attributes["samesite"].lower() == "lax" and "max-age" not in attributes
    account = await client.get("/account")
    assert account.status_code == 200
    assert "a@example.com" in account.text
    assert secret not in account.text


async def test_remember_checkbox_makes_a_persistent_cookie(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """Ticking "remember" gives the cookie Max-Age=remember_max_age."""
    response = await submit_login(client, remember="1")
    _, attributes = set_cookies(response)[SESSION_COOKIE]
    assert attributes["max-age"] == str(app.state.settings.remember_max_age)


@pytest.mark.parametrize(
    ("next_path", "location"),
    [
        ("/account?tab=sessions", "/account?tab=sessions"),
        ("/orders/42#top", "/orders/42#top"),
        ("//evil.example/", "/account"),
        ("/\\evil.example", "/account"),
        ("\\\\evil.example", "/account"),
        ("https://evil.example/", "/account"),
        ("javascript:alert(1)", "/account"),
        ("/\t/evil.example", "/account"),
        ("/ok\r\nSet-Cookie: x=y", "/account"),
        ("evil.example", "/account"),
        ("", "/account"),
    ],
)
async def test_next_is_followed_only_for_same_origin_paths(
    client: httpx.AsyncClient, next_path: str, location: str
) -> None:
    """`next` redirects only to relative same-origin paths (no open redirect)."""
    response = await submit_login(client, next=next_path)
    assert response.status_code == 303
    assert response.headers["location"] == location


async def test_login_page_keeps_only_a_safe_next(client: httpx.AsyncClient) -> None:
    """?next= is carried in a hidden field when safe, dropped when not, always escaped."""
    safe = Form((await client.get("/login", params={"next": "/orders"})).text)
    assert safe.value("next") == "/orders"
    unsafe = Form((await client.get("/login", params={"next": "//evil.example"})).text)
    assert unsafe.value("next") is None
    hostile = await client.get("/login", params={"next": '/"><script>alert(1)</script>'})
    assert "<script>" not in hostile.text
    assert Form(hostile.text).value("next") == '/"><script>alert(1)</script>'


async def test_failed_login_is_one_generic_401_for_every_reason(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """Unknown address, wrong password and disabled account: same status, same page."""
    response = await client.post(
        "/auth/register", json={"email": "off@example.com", "password": PASSWORD}
    )
    assert response.status_code == 201
    await app.state.keyturn.auth.disable_user("off@example.com")
    unknown = await submit_login(client, "nobody@example.com")
    wrong = await submit_login(client, "a@example.com", "wrong password!")
    disabled = await submit_login(client, "off@example.com")
    pages = []
    for response, email in ((unknown, "nobody"), (wrong, "a"), (disabled, "off")):
        assert response.status_code == 401
        assert GENERIC in response.text
        assert SESSION_COOKIE not in set_cookies(response)
        assert_accessible_page(response)
        pages.append(response.text.replace(f"{email}@example.com", "EMAIL"))
    assert pages[0] == pages[1] == pages[2]


async def test_throttled_form_login_is_429_with_retry_after(client: httpx.AsyncClient) -> None:
    """After 10 failures even the right password gets a 429 page and Retry-After."""
    for _ in range(10):
        assert (await submit_login(client, password="wrong password!")).status_code == 401
    response = await submit_login(client)
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 0
    assert "Too many failed attempts" in response.text
    assert SESSION_COOKIE not in set_cookies(response)


# --- register ---------------------------------------------------------------------------------


async def test_register_page_creates_and_signs_in(client: httpx.AsyncClient) -> None:
    """GET /register is an accessible form; POST creates the account, signs in, 303 /account."""
    response = await client.get("/register")
    assert response.status_code == 200
    page = assert_accessible_page(response)
    assert {field.get("name") for field in page.inputs} == {"csrf_token", "email", "password"}
    token = page.value("csrf_token")
    assert token
    response = await client.post(
        "/register", data={"email": "new@example.com", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/account"
    assert SESSION_COOKIE in set_cookies(response)
    assert "new@example.com" in (await client.get("/account")).text


@pytest.mark.parametrize(
    ("email", "password", "status", "message"),
    [
        ("new@example.com", "short", 400, "password"),
        ("not-an-address", PASSWORD, 400, "e-mail"),
        ("A@EXAMPLE.COM", PASSWORD, 409, "already exists"),
    ],
)
async def test_register_page_explains_refusals(
    client: httpx.AsyncClient, email: str, password: str, status: int, message: str
) -> None:
    """A weak password, a bad address or a taken one re-render the form with why."""
    token = await form_token(client, "/register")
    response = await client.post(
        "/register", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == status
    assert message in response.text.lower() or message in response.text
    assert SESSION_COOKIE not in set_cookies(response)


async def test_register_is_404_when_closed(make_client: MakeClient) -> None:
    """--no-allow-registration: the pages are 404, the JSON endpoint 403 forbidden."""
    async with make_client(Settings(allow_registration=False), base_url=BASE) as client:
        assert (await client.get("/register")).status_code == 404
        assert (await client.post("/register", data={"email": "x"})).status_code == 404
        response = await client.post(
            "/auth/register", json={"email": "a@example.com", "password": PASSWORD}
        )
        assert response.status_code == 403
        assert response.json()["error"] == "forbidden"
        assert "/register" not in (await client.get("/login")).text


# --- account ------------------------------------------------------------------------------------


async def test_account_redirects_to_login_when_signed_out(client: httpx.AsyncClient) -> None:
    """Signed out (or with a dead cookie): 303 to /login?next=/account."""
    response = await client.get("/account")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/account"
    dead = await client.get("/account", headers={"Cookie": f"{SESSION_COOKIE}={'A' * 43}"})
    assert dead.status_code == 303


async def test_account_lists_sign_ins_with_this_device_and_buttons(
    client: httpx.AsyncClient, make_client: MakeClient, app: FastAPI
) -> None:
    """The account page shows the e-mail, each sign-in (device, IP, times) with a
    sign-out form, "this device", sign out everywhere else and sign out."""
    async with make_client(app=app, base_url=BASE) as other:
        await submit_login(other)
        await submit_login(client)
        response = await client.get("/account")
    assert response.status_code == 200
    page = assert_accessible_page(response)
    text = response.text
    assert "a@example.com" in text
    assert text.count("(this device)</strong>") == 1
    assert "Firefox on Linux" in text and "Python (httpx)" in text
    assert "127.0.0.1" in text and " UTC" in text
    assert len(re.findall(r'action="/account/sessions/[A-Za-z0-9_-]+/revoke"', text)) == 2
    assert 'action="/account/sign-out-others"' in text and 'action="/logout"' in text
    assert all(field.get("value") for field in page.inputs if field.get("name") == "csrf_token")


async def test_revoking_another_sign_in_from_the_account_page(
    client: httpx.AsyncClient, make_client: MakeClient, app: FastAPI
) -> None:
    """The per-row button ends that sign-in and returns to /account."""
    async with make_client(app=app, base_url=BASE) as other:
        await submit_login(other)
        await submit_login(client)
        token = await account_token(client)
        sessions = (await client.get("/auth/sessions")).json()
        target = next(row["id"] for row in sessions if not row["current"])
        response = await client.post(
            f"/account/sessions/{target}/revoke", data={"csrf_token": token}
        )
        assert response.status_code == 303 and response.headers["location"] == "/account"
        assert (await other.get("/account")).status_code == 303
        assert (await client.get("/account")).status_code == 200
        gone = await client.post(f"/account/sessions/{target}/revoke", data={"csrf_token": token})
        assert gone.status_code == 404


async def test_revoking_this_sign_in_from_the_account_page_signs_out(
    client: httpx.AsyncClient,
) -> None:
    """Ending the current sign-in clears the cookie and goes to /login."""
    await submit_login(client)
    token = await account_token(client)
    current = (await client.get("/auth/whoami")).json()["session_id"]
    response = await client.post(f"/account/sessions/{current}/revoke", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert set_cookies(response)[SESSION_COOKIE][1]["max-age"] == "0"
    assert (await client.get("/account")).status_code == 303


async def test_account_lists_token_devices_and_signs_them_out(
    make_client: MakeClient, make_app: Callable[..., FastAPI]
) -> None:
    """A sign-in through the password grant (a refresh family) is listed on /account
    beside the browser session, with its own CSRF-protected sign-out button, which
    ends the family: its refresh token and access token stop working (#10 item 10b)."""
    # The token device comes from the password grant, off by default (#12).
    settings = Settings(database_url="sqlite+aiosqlite:///:memory:", password_grant=True)
    async with make_client(app=make_app(settings), base_url=BASE) as client:
        client.headers["User-Agent"] = FIREFOX
        registered = await client.post(
            "/auth/register", json={"email": "a@example.com", "password": PASSWORD}
        )
        assert registered.status_code == 201
        grant = await client.post(
            "/oauth/token",
            data={"grant_type": "password", "username": "a@example.com", "password": PASSWORD},
            headers={"User-Agent": "curl/8.5.0"},
        )
        assert grant.status_code == 200, grant.text
        pair = grant.json()
        await submit_login(client)
        family = next(
            row["id"]
            for row in (await client.get("/auth/sessions")).json()
            if row["kind"] == "token"
        )
        page = await client.get("/account")
        assert page.status_code == 200
        assert_accessible_page(page)
        assert f'action="/account/sessions/{family}/revoke"' in page.text
        assert "curl" in page.text and "App (token)" in page.text and "Browser" in page.text
        assert "You are not signed in anywhere else." not in page.text
        bearer = {"Authorization": f"Bearer {pair['access_token']}"}
        assert (await client.get("/auth/whoami", headers=bearer)).status_code == 200
        forged = await client.post(f"/account/sessions/{family}/revoke", data={"csrf_token": "x"})
        assert forged.status_code == 403
        token = await account_token(client)
        response = await client.post(
            f"/account/sessions/{family}/revoke", data={"csrf_token": token}
        )
        assert response.status_code == 303 and response.headers["location"] == "/account"
        refused = await client.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]},
        )
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
        assert (await client.get("/auth/whoami", headers=bearer)).status_code == 401
        after = await client.get("/account")
        assert after.status_code == 200 and family not in after.text
        assert "You are not signed in anywhere else." in after.text


async def test_sign_out_everywhere_else_keeps_this_sign_in(
    client: httpx.AsyncClient, make_client: MakeClient, app: FastAPI
) -> None:
    """The button ends every other sign-in and keeps this one."""
    async with make_client(app=app, base_url=BASE) as other:
        await submit_login(other)
        await submit_login(client)
        token = await account_token(client)
        response = await client.post("/account/sign-out-others", data={"csrf_token": token})
        assert response.status_code == 303 and response.headers["location"] == "/account"
        assert (await other.get("/account")).status_code == 303
        assert (await client.get("/account")).status_code == 200
        assert len((await client.get("/auth/sessions")).json()) == 1


async def test_account_forms_need_the_csrf_token(client: httpx.AsyncClient) -> None:
    """Every account form post without the token is 403 and changes nothing."""
    await submit_login(client)
    current = (await client.get("/auth/whoami")).json()["session_id"]
    for path in ("/logout", "/account/sign-out-others", f"/account/sessions/{current}/revoke"):
        response = await client.post(path, data={"csrf_token": "forged"})
        assert response.status_code == 403
    assert (await client.get("/account")).status_code == 200


async def test_account_actions_when_signed_out_go_to_login(client: httpx.AsyncClient) -> None:
    """Posting an account form without a session redirects to the sign-in page."""
    for path in ("/account/sign-out-others", "/account/sessions/abc/revoke"):
        response = await client.post(path)
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=/account"


# --- sign out ---------------------------------------------------------------------------------


async def test_logout_form_ends_the_session_and_clears_the_cookie(
    client: httpx.AsyncClient,
) -> None:
    """POST /logout with the token: 303 /login, cookie cleared, old ID dead."""
    response = await submit_login(client)
    secret, _ = set_cookies(response)[SESSION_COOKIE]
    token = await account_token(client)
    response = await client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert set_cookies(response)[SESSION_COOKIE][1]["max-age"] == "0"
    replay = await client.get("/account", headers={"Cookie": f"{SESSION_COOKIE}={secret}"})
    assert replay.status_code == 303


async def test_get_logout_is_405(client: httpx.AsyncClient) -> None:
    """Signing out needs a POST; GET /logout changes nothing."""
    await submit_login(client)
    assert (await client.get("/logout")).status_code == 405
    assert (await client.get("/account")).status_code == 200


# --- assets ---------------------------------------------------------------------------------


async def test_stylesheet_is_served(client: httpx.AsyncClient) -> None:
    """/static/keyturn.css is CSS with nosniff."""
    response = await client.get("/static/keyturn.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert response.headers["x-content-type-options"] == "nosniff"
