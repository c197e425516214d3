"""CSRF: every cookie-authenticated unsafe request, host-app routes included, needs
the session's token and must not be cross-site; sign-in is guarded against login
CSRF (SEC-25..31). The logic is storage-independent, so these run on memory."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from tests.server.http_support import BASE

from keyturn.settings import Settings
from keyturn.web.authn.cookies import PRE_SESSION_COOKIE, SESSION_COOKIE
from keyturn.web.dependencies import CurrentPrincipal, OptionalPrincipal

MakeClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]

PASSWORD = "correct horse battery staple"
EVIL = "https://evil.example"


def add_host_routes(app: FastAPI) -> None:
    """Routes a host application might add: they get CSRF protection for free."""

    @app.post("/things")
    async def create_thing(request: Request, principal: OptionalPrincipal) -> JSONResponse:
        form = await request.form()  # proves the body was replayed intact
        return JSONResponse(
            {
                "who": principal.email if principal else None,
                "name": form.get("name"),
            }
        )

    @app.delete("/things/{thing_id}")
    async def delete_thing(thing_id: str, principal: CurrentPrincipal) -> JSONResponse:
        return JSONResponse({"deleted": thing_id, "who": principal.email})

    @app.post("/echo")
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"body": (await request.body()).decode()})


@pytest.fixture
def app(make_app: Callable[..., FastAPI]) -> FastAPI:
    """The keyturn app with a few host-application routes."""
    app = make_app(Settings(cors_origins=["https://spa.example"], issuer="https://auth.example"))
    add_host_routes(app)
    return app


@pytest.fixture
async def client(make_client: MakeClient, app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A browser with a registered account (not yet signed in)."""
    async with make_client(app=app, base_url=BASE) as opened:
        response = await opened.post(
            "/auth/register", json={"email": "a@example.com", "password": PASSWORD}
        )
        assert response.status_code == 201
        yield opened


async def sign_in(client: httpx.AsyncClient, email: str = "a@example.com") -> str:
    """Sign in over JSON; return the CSRF token."""
    response = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token: str = response.json()["csrf_token"]
    return token


def assert_csrf_failed(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "csrf_failed"


# --- the token half ------------------------------------------------------------------------


async def test_unsafe_request_without_token_is_403(client: httpx.AsyncClient) -> None:
    """A cookie-authenticated POST with no token is refused and has no effect."""
    await sign_in(client)
    assert_csrf_failed(await client.post("/auth/logout"))
    assert (await client.get("/auth/whoami")).status_code == 200


@pytest.mark.parametrize("token", ["wrong", "x" * 43, " ", "é" * 10])
async def test_wrong_token_is_403(client: httpx.AsyncClient, token: str) -> None:
    """A made-up token is refused, header or form field alike."""
    await sign_in(client)
    assert_csrf_failed(await client.post("/auth/logout", headers={"X-CSRF-Token": token.encode()}))
    assert_csrf_failed(await client.post("/things", data={"csrf_token": token}))


async def test_token_of_another_session_is_403(
    client: httpx.AsyncClient, make_client: MakeClient, app: FastAPI
) -> None:
    """Tokens are bound to their session: another browser's token does not work here."""
    async with make_client(app=app, base_url=BASE) as other:
        other_token = await sign_in(other)
    await sign_in(client)
    assert_csrf_failed(await client.post("/auth/logout", headers={"X-CSRF-Token": other_token}))


async def test_token_from_before_relogin_is_403(client: httpx.AsyncClient) -> None:
    """Signing in again issues a new token; the old one stops working."""
    old = await sign_in(client)
    new = await sign_in(client)
    assert old != new
    assert_csrf_failed(await client.post("/auth/logout", headers={"X-CSRF-Token": old}))
    assert (await client.post("/auth/logout", headers={"X-CSRF-Token": new})).status_code == 204


async def test_correct_header_token_passes(client: httpx.AsyncClient) -> None:
    """The session's token in X-CSRF-Token lets the request through."""
    token = await sign_in(client)
    response = await client.post("/auth/logout", headers={"X-CSRF-Token": token})
    assert response.status_code == 204


async def test_form_field_token_passes_and_the_route_still_reads_the_body(
    client: httpx.AsyncClient,
) -> None:
    """A csrf_token form field is accepted, and the route sees the whole form (replay)."""
    token = await sign_in(client)
    response = await client.post("/things", data={"name": "lamp", "csrf_token": token})
    assert response.status_code == 200
    assert response.json() == {"who": "a@example.com", "name": "lamp"}


async def test_ambiguous_form_tokens_are_403(client: httpx.AsyncClient) -> None:
    """Two different csrf_token fields are refused rather than one picked."""
    token = await sign_in(client)
    body = f"csrf_token={token}&csrf_token=other&name=x"
    response = await client.post(
        "/things", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert_csrf_failed(response)


async def test_token_in_a_json_body_or_query_does_not_count(client: httpx.AsyncClient) -> None:
    """Only the header and the urlencoded form field carry the token."""
    token = await sign_in(client)
    assert_csrf_failed(await client.post("/echo", json={"csrf_token": token}))
    assert_csrf_failed(await client.post("/echo", params={"csrf_token": token}))
    multipart = await client.post("/things", files={"csrf_token": (None, token)})
    assert_csrf_failed(multipart)


async def test_only_the_pre_session_cookie_is_not_a_token(client: httpx.AsyncClient) -> None:
    """A request carrying the login-CSRF cookie but no token is refused (no naive
    double-submit, SEC-26)."""
    await sign_in(client)
    client.cookies.set(PRE_SESSION_COOKIE, "p" * 43)
    assert_csrf_failed(await client.post("/echo", content=b"x"))


async def test_host_app_routes_are_protected(client: httpx.AsyncClient) -> None:
    """A DELETE on a host-app route needs the token too; with it the route runs."""
    token = await sign_in(client)
    assert_csrf_failed(await client.delete("/things/7"))
    response = await client.delete("/things/7", headers={"X-CSRF-Token": token})
    assert response.status_code == 200
    assert response.json() == {"deleted": "7", "who": "a@example.com"}


async def test_unauthenticated_unsafe_requests_need_no_token(client: httpx.AsyncClient) -> None:
    """Without a session there is nothing to forge: host routes run as anonymous."""
    response = await client.post("/things", data={"name": "lamp"})
    assert response.status_code == 200
    assert response.json() == {"who": None, "name": "lamp"}


async def test_bearer_requests_are_exempt_and_ignore_the_cookie(
    client: httpx.AsyncClient,
) -> None:
    """With Authorization: Bearer there is no CSRF check and no cookie fallback (SEC-31)."""
    await sign_in(client)
    response = await client.post(
        "/things", data={"name": "lamp"}, headers={"Authorization": "Bearer some-token"}
    )
    assert response.status_code == 200
    assert response.json()["who"] is None


async def test_oversized_form_is_413_not_buffered(
    make_client: MakeClient, make_app: Callable[..., FastAPI]
) -> None:
    """The body replay reads through the body limit: a huge form is 413."""
    app = make_app(Settings(max_body_bytes=1024))
    add_host_routes(app)
    async with make_client(app=app, base_url=BASE) as client:
        await client.post("/auth/register", json={"email": "a@example.com", "password": PASSWORD})
        await sign_in(client)

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b"name=" + b"x" * 500 + b"&"

        response = await client.post(
            "/things",
            content=chunks(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 413


# --- the origin half ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": EVIL},
        {"Origin": "null"},
        {"Origin": "http://testserver"},  # same host, other scheme: another origin
        {"Origin": "https://testserver.evil.example"},
        {"Origin": "https://testserver:8443"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "https://testserver"},
        {"Origin": "not a url"},
    ],
)
async def test_cross_site_requests_are_403_even_with_the_token(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    """A valid token does not help a cross-site request (SEC-27)."""
    token = await sign_in(client)
    response = await client.post("/auth/logout", headers={**headers, "X-CSRF-Token": token})
    assert_csrf_failed(response)
    assert (await client.get("/auth/whoami")).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://testserver"},
        {"Origin": "https://TestServer:443"},
        {"Origin": "https://spa.example"},  # in cors_origins
        {"Origin": "https://auth.example"},  # the issuer, e.g. behind a TLS proxy
        {"Sec-Fetch-Site": "same-origin", "Origin": "https://testserver"},
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
        {},
    ],
)
async def test_same_origin_or_allowed_requests_with_the_token_pass(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    """Same-origin, allow-listed or header-less requests with the token go through."""
    token = await sign_in(client)
    response = await client.post("/auth/logout", headers={**headers, "X-CSRF-Token": token})
    assert response.status_code == 204


# --- login CSRF ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers", [{"Origin": EVIL}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}]
)
async def test_cross_site_json_login_is_403(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    """A cross-site sign-in (login CSRF, SEC-30) is refused and sets no cookie."""
    response = await client.post(
        "/auth/login", json={"email": "a@example.com", "password": PASSWORD}, headers=headers
    )
    assert_csrf_failed(response)
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    register = await client.post(
        "/auth/register", json={"email": "b@example.com", "password": PASSWORD}, headers=headers
    )
    assert_csrf_failed(register)


async def login_form_token(client: httpx.AsyncClient) -> str:
    page = await client.get("/login")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


async def test_form_login_needs_the_pre_session_token(client: httpx.AsyncClient) -> None:
    """POST /login without the matching pre-session cookie and field is refused."""
    form = {"email": "a@example.com", "password": PASSWORD}
    missing = await client.post("/login", data=form)
    assert missing.status_code == 403
    token = await login_form_token(client)
    wrong = await client.post("/login", data={**form, "csrf_token": "x" * 43})
    assert wrong.status_code == 403
    client.cookies.delete(PRE_SESSION_COOKIE)
    no_cookie = await client.post("/login", data={**form, "csrf_token": token})
    assert no_cookie.status_code == 403
    for response in (missing, wrong, no_cookie):
        assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
        assert "expired or was sent from another site" in response.text


async def test_cross_site_form_login_is_refused_even_with_the_token(
    client: httpx.AsyncClient,
) -> None:
    """A matching pre-session token does not help a cross-origin form post."""
    token = await login_form_token(client)
    form = {"email": "a@example.com", "password": PASSWORD, "csrf_token": token}
    response = await client.post("/login", data=form, headers={"Origin": EVIL})
    assert response.status_code == 403
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    ok = await client.post("/login", data=form, headers={"Origin": BASE})
    assert ok.status_code == 303


async def test_form_login_with_the_token_succeeds_and_drops_the_pre_session_cookie(
    client: httpx.AsyncClient,
) -> None:
    """Matching token: signed in, and the pre-session cookie is deleted."""
    token = await login_form_token(client)
    response = await client.post(
        "/login", data={"email": "a@example.com", "password": PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303
    cookies = response.headers.get_list("set-cookie")
    assert any(c.startswith(f"{SESSION_COOKIE}=") for c in cookies)
    assert any(c.startswith(f"{PRE_SESSION_COOKIE}=") and "Max-Age=0" in c for c in cookies)


async def test_signed_in_page_forms_carry_the_token_in_a_field_never_a_url(
    client: httpx.AsyncClient,
) -> None:
    """Account page forms hold the session token as a hidden field, not in links."""
    token = await sign_in(client)
    page = (await client.get("/account")).text
    assert page.count(f'name="csrf_token" value="{token}"') >= 3
    for url in re.findall(r'(?:href|action)="([^"]*)"', page):
        assert token not in url and "csrf" not in url


# --- behind a TLS-terminating proxy (#10 item 10a) -------------------------------------------


@pytest.mark.parametrize(
    ("trusted", "forwarded", "status"),
    [
        (["127.0.0.1"], {"X-Forwarded-Proto": "https"}, 204),
        (["127.0.0.1"], {}, 403),
        (["10.0.0.0/8"], {"X-Forwarded-Proto": "https"}, 403),
    ],
    ids=["trusted-https", "no-header", "untrusted-peer"],
)
async def test_the_own_origin_behind_a_trusted_proxy_is_the_https_one(
    make_client: MakeClient,
    make_app: Callable[..., FastAPI],
    trusted: list[str],
    forwarded: dict[str, str],
    status: int,
) -> None:
    """Behind a TLS proxy without --issuer, the browser's ``Origin:
    https://testserver`` is this request's own origin when a trusted proxy says
    the request came over HTTPS; otherwise it is another origin (#10 item 10a)."""
    app = make_app(Settings(trusted_proxies=trusted))
    async with make_client(app=app, base_url="http://testserver") as client:
        account = {"email": "a@example.com", "password": PASSWORD}
        assert (await client.post("/auth/register", json=account)).status_code == 201
        login = await client.post("/auth/login", json=account)
        assert login.status_code == 200, login.text
        cookie = f"{SESSION_COOKIE}={login.cookies[SESSION_COOKIE]}"
        headers = {
            "Cookie": cookie,
            "X-CSRF-Token": login.json()["csrf_token"],
            "Origin": "https://testserver",
            **forwarded,
        }
        response = await client.post("/auth/logout", headers=headers)
    assert response.status_code == status, response.text
    if status == 403:
        assert response.json()["error"] == "csrf_failed"


async def test_a_trusted_proxy_does_not_make_another_site_same_origin(
    make_client: MakeClient, make_app: Callable[..., FastAPI]
) -> None:
    """X-Forwarded-Proto only changes the scheme: a foreign Origin stays foreign (#10 item 10a)."""
    app = make_app(Settings(trusted_proxies=["127.0.0.1"]))
    async with make_client(app=app, base_url="http://testserver") as client:
        account = {"email": "a@example.com", "password": PASSWORD}
        assert (await client.post("/auth/register", json=account)).status_code == 201
        login = await client.post("/auth/login", json=account)
        headers = {
            "Cookie": f"{SESSION_COOKIE}={login.cookies[SESSION_COOKIE]}",
            "X-CSRF-Token": login.json()["csrf_token"],
            "X-Forwarded-Proto": "https",
        }
        for origin in (EVIL, "http://testserver"):
            response = await client.post("/auth/logout", headers={**headers, "Origin": origin})
            assert_csrf_failed(response)
