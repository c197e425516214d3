"""``GET /oauth/authorize`` on the browser session, black-box (SPEC "OAuth 2.1
authorization code flow"): every error rule, the sign-in round trip, prompt,
max_age and login_hint. The code exchange is in ``test_oauth_code_grant``.
"""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator, Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from tests.server.code_flow_support import (
    NATIVE_REDIRECT,
    RegisteredClient,
    authorize,
    authorize_params,
    exchange,
    get_code,
    pkce,
    query_of,
    register_client,
)
from tests.server.test_pages import Form
from tests.server.token_support import (
    BASE,
    EMAIL,
    PASSWORD,
    MakeClient,
    build_app,
    clock,
    login,
)

from keyturn.clock import FrozenClock

__all__ = ["build_app", "clock"]


@pytest.fixture
def lite_app(build_app: Callable[..., FastAPI], sqlite_url: str) -> FastAPI:
    """An app on a migrated SQLite file, frozen clock."""
    return build_app(sqlite_url)


@pytest.fixture
async def browser(make_client: MakeClient, lite_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-out browser on ``lite_app`` with one registered account."""
    async with make_client(app=lite_app, base_url=BASE) as opened:
        response = await opened.post("/auth/register", json={"email": EMAIL, "password": PASSWORD})
        assert response.status_code == 201
        opened.cookies.clear()
        yield opened


@pytest.fixture
async def spa(lite_app: FastAPI, browser: httpx.AsyncClient) -> RegisteredClient:
    """A first-party public client (a SPA) on ``lite_app``."""
    return await register_client(lite_app, name="Notes SPA")


def assert_error_redirect(
    response: httpx.Response, client: RegisteredClient, error: str, state: str | None
) -> dict[str, str]:
    """A 303 to the client's redirect URI with ``error``, ``state`` and ``iss``."""
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(client.redirect_uri + "?")
    query = query_of(location)
    assert query["error"] == error
    assert query["iss"] == BASE
    assert query.get("state") == state
    assert "error_description" in query
    return query


def assert_error_page(response: httpx.Response) -> None:
    """A 400 HTML page and no redirect."""
    assert response.status_code == 400
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["cache-control"] == "no-store"


async def sign_in_with_form(browser: httpx.AsyncClient, login_url: str) -> httpx.Response:
    """Fill in the /login page at ``login_url`` (as sent by /oauth/authorize) and submit."""
    page = Form((await browser.get(login_url)).text)
    data = {
        "email": EMAIL,
        "password": PASSWORD,
        "csrf_token": page.value("csrf_token") or "",
        "next": page.value("next") or "",
    }
    return await browser.post("/login", data=data, follow_redirects=False)


async def test_signed_out_goes_to_login_and_comes_back_with_a_code(
    browser: httpx.AsyncClient, spa: RegisteredClient
) -> None:
    """Signed out: 303 /login?next=<same-origin authorize URL>; after signing in, a code."""
    params = authorize_params(spa, pkce())
    first = await authorize(browser, params)
    assert first.status_code == 303
    login_url = first.headers["location"]
    assert login_url.startswith("/login?")
    back = parse_qs(urlsplit(login_url).query)["next"][0]
    assert back.startswith("/oauth/authorize?")
    signed_in = await sign_in_with_form(browser, login_url)
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == back
    final = await browser.get(back, follow_redirects=False)
    query = query_of(final.headers["location"])
    assert final.headers["location"].startswith(spa.redirect_uri + "?code=")
    assert query["state"] == params["state"]
    assert query["iss"] == BASE


async def test_unknown_client_is_an_error_page_never_a_redirect(
    browser: httpx.AsyncClient, spa: RegisteredClient
) -> None:
    """An unknown or missing client_id: 400 HTML, no Location."""
    params = authorize_params(spa, pkce(), client_id="no-such-client")
    assert_error_page(await authorize(browser, params))
    params = authorize_params(spa, pkce(), client_id=None)
    assert_error_page(await authorize(browser, params))


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/callback",
        "https://app.example/callback/",
        "https://app.example/callback?x=1",
        None,
    ],
)
async def test_unregistered_redirect_uri_is_an_error_page(
    browser: httpx.AsyncClient, spa: RegisteredClient, redirect_uri: str | None
) -> None:
    """A redirect_uri that is not registered exactly (or missing): 400 HTML, no redirect."""
    await login(browser)
    response = await authorize(browser, authorize_params(spa, pkce(), redirect_uri=redirect_uri))
    assert_error_page(response)


async def test_loopback_redirect_matches_any_port(
    lite_app: FastAPI, browser: httpx.AsyncClient
) -> None:
    """A registered http://127.0.0.1/... URI matches on any port (RFC 8252 7.3), nothing else."""
    native = await register_client(lite_app, name="CLI", redirect_uris=(NATIVE_REDIRECT,))
    await login(browser)
    on_port = "http://127.0.0.1:53682/callback"
    response = await authorize(browser, authorize_params(native, pkce(), redirect_uri=on_port))
    assert response.headers["location"].startswith(on_port + "?code=")
    other_path = "http://127.0.0.1:53682/other"
    assert_error_page(
        await authorize(browser, authorize_params(native, pkce(), redirect_uri=other_path))
    )


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": None}, "invalid_request"),
        ({"scope": "openid admin"}, "invalid_scope"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"max_age": "soon"}, "invalid_request"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "invalid_request"),
    ],
)
async def test_other_errors_redirect_with_error_state_and_iss(
    browser: httpx.AsyncClient,
    spa: RegisteredClient,
    changes: dict[str, str | None],
    error: str,
) -> None:
    """Every other invalid request: 303 to the client with error, error_description, state, iss."""
    await login(browser)
    params = authorize_params(spa, pkce(), **changes)
    assert_error_redirect(await authorize(browser, params), spa, error, params["state"])


async def test_errors_redirect_even_when_signed_out(
    browser: httpx.AsyncClient, spa: RegisteredClient
) -> None:
    """A request that is invalid is answered at once, before any sign-in page."""
    params = authorize_params(spa, pkce(), code_challenge_method="plain")
    assert_error_redirect(await authorize(browser, params), spa, "invalid_request", params["state"])


async def test_client_without_the_code_grant_is_unauthorized_client(
    lite_app: FastAPI, browser: httpx.AsyncClient
) -> None:
    """A client registered without authorization_code: unauthorized_client by redirect."""
    service = await register_client(
        lite_app, confidential=True, grants=("client_credentials",), name="Service"
    )
    params = authorize_params(service, pkce())
    assert_error_redirect(
        await authorize(browser, params), service, "unauthorized_client", params["state"]
    )


async def test_prompt_none_signed_out_is_login_required(
    browser: httpx.AsyncClient, spa: RegisteredClient
) -> None:
    """prompt=none never shows a page: signed out is login_required."""
    params = authorize_params(spa, pkce(), prompt="none")
    assert_error_redirect(await authorize(browser, params), spa, "login_required", params["state"])


async def test_prompt_none_signed_in_first_party_gets_a_code(
    browser: httpx.AsyncClient, spa: RegisteredClient
) -> None:
    """prompt=none with a live session and a first-party client: the code, silently."""
    await login(browser)
    response = await authorize(browser, authorize_params(spa, pkce(), prompt="none"))
    assert "code" in query_of(response.headers["location"])


async def test_prompt_none_without_consent_is_consent_required(
    lite_app: FastAPI, browser: httpx.AsyncClient
) -> None:
    """prompt=none for a third-party client the user never allowed: consent_required."""
    third = await register_client(lite_app, name="Third party", first_party=False)
    await login(browser)
    params = authorize_params(third, pkce(), prompt="none")
    assert_error_redirect(
        await authorize(browser, params), third, "consent_required", params["state"]
    )


async def test_prompt_login_forces_a_fresh_sign_in(
    browser: httpx.AsyncClient, spa: RegisteredClient, clock: FrozenClock
) -> None:
    """prompt=login with a live session: sign in again, then the code (no loop)."""
    await login(browser)
    clock.advance(5)
    params = authorize_params(spa, pkce(), prompt="login")
    first = await authorize(browser, params)
    assert first.headers["location"].startswith("/login?")
    back = parse_qs(urlsplit(first.headers["location"]).query)["next"][0]
    # Reloading the way back without signing in again does not skip the sign-in.
    again = await browser.get(back, follow_redirects=False)
    assert again.headers["location"].startswith("/login?")
    clock.advance(1)
    signed_in = await sign_in_with_form(browser, first.headers["location"])
    final = await browser.get(signed_in.headers["location"], follow_redirects=False)
    assert "code" in query_of(final.headers["location"])


async def test_a_forged_fresh_login_marker_is_ignored(
    browser: httpx.AsyncClient, spa: RegisteredClient
) -> None:
    """The prompt=login way back cannot be forged: a made-up kt_login still asks to sign in."""
    await login(browser)
    params = authorize_params(spa, pkce(), prompt="login", kt_login="1.%s" % ("0" * 64))
    response = await authorize(browser, params)
    assert response.headers["location"].startswith("/login?")


async def test_max_age_older_than_the_sign_in_forces_a_fresh_one(
    browser: httpx.AsyncClient, spa: RegisteredClient, clock: FrozenClock
) -> None:
    """max_age shorter than the time since sign-in: sign in again; within it: the code."""
    await login(browser)
    clock.advance(120)
    fresh_enough = await authorize(browser, authorize_params(spa, pkce(), max_age="300"))
    assert "code" in query_of(fresh_enough.headers["location"])
    too_old = await authorize(browser, authorize_params(spa, pkce(), max_age="60"))
    assert too_old.headers["location"].startswith("/login?")
    silent = authorize_params(spa, pkce(), max_age="60", prompt="none")
    assert_error_redirect(await authorize(browser, silent), spa, "login_required", silent["state"])


async def test_login_hint_prefills_the_sign_in_form(
    browser: httpx.AsyncClient, spa: RegisteredClient
) -> None:
    """login_hint travels to /login and prefills the e-mail field."""
    response = await authorize(browser, authorize_params(spa, pkce(), login_hint=EMAIL))
    login_url = response.headers["location"]
    assert query_of(login_url)["login_hint"] == EMAIL
    page = Form((await browser.get(login_url)).text)
    assert page.value("email") == EMAIL


async def test_a_bearer_token_is_not_a_browser_sign_in(
    browser: httpx.AsyncClient, spa: RegisteredClient
) -> None:
    """Only the browser session counts at /oauth/authorize: a bearer caller is sent to sign in."""
    await login(browser)
    token = (
        await browser.post("/auth/token", headers={"X-CSRF-Token": await login(browser)})
    ).json()
    browser.cookies.clear()
    response = await browser.get(
        "/oauth/authorize",
        params=authorize_params(spa, pkce()),
        headers={"Authorization": f"Bearer {token['access_token']}"},
        follow_redirects=False,
    )
    assert response.headers["location"].startswith("/login?")


async def test_the_code_is_bound_to_the_session_user(
    browser: httpx.AsyncClient, spa: RegisteredClient
) -> None:
    """The tokens a code gives are the signed-in user's, with the requested scope."""
    await login(browser)
    proof = pkce()
    code = await get_code(browser, authorize_params(spa, proof, scope="openid email"))
    body = (await exchange(browser, spa, code, proof.verifier)).json()
    assert body["scope"] == "openid email"
    whoami = await browser.get(
        "/auth/whoami", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert whoami.json()["email"] == EMAIL


async def test_login_page_lets_its_form_redirect_to_the_client(
    browser: httpx.AsyncClient, spa: RegisteredClient
) -> None:
    """The sign-in page of an authorization request adds the client's origin to CSP
    form-action (browsers check the redirects after a form); other pages keep 'self'."""
    first = await authorize(browser, authorize_params(spa, pkce()))
    page = await browser.get(first.headers["location"])
    assert "form-action 'self' https://app.example;" in page.headers["content-security-policy"]
    plain = await browser.get("/login")
    assert "form-action 'self';" in plain.headers["content-security-policy"]
    elsewhere = await browser.get("/login", params={"next": "/account"})
    assert "form-action 'self';" in elsewhere.headers["content-security-policy"]


@pytest.mark.parametrize("how", ["password change", "user disabled"])
async def test_ending_every_session_ends_the_apps_tokens(
    lite_app: FastAPI, browser: httpx.AsyncClient, spa: RegisteredClient, how: str
) -> None:
    """A password change or a disabled account ends the refresh families that the
    code flow opened, with their access tokens."""
    csrf = await login(browser)
    proof = pkce()
    code = await get_code(browser, authorize_params(spa, proof))
    body = (await exchange(browser, spa, code, proof.verifier)).json()
    if how == "password change":
        response = await browser.post(
            "/auth/password",
            json={"current_password": PASSWORD, "new_password": "another long passphrase"},
            headers={"X-CSRF-Token": csrf},
        )
        assert response.status_code == 204, response.text
    else:
        await lite_app.state.keyturn.auth.disable_user(EMAIL)
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert (await browser.get("/auth/whoami", headers=bearer)).status_code == 401
    stale = await browser.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "client_id": spa.id,
        },
    )
    assert stale.json()["error"] == "invalid_grant"


async def test_a_new_user_can_register_on_the_way_and_come_back(
    browser: httpx.AsyncClient, spa: RegisteredClient
) -> None:
    """The sign-in page's "Create one" link keeps the authorization request, and
    registering there comes back to it with a code."""
    first = await authorize(browser, authorize_params(spa, pkce()))
    login_page = await browser.get(first.headers["location"])
    link = re.search(r'href="(/register\?next=[^"]+)"', login_page.text)
    assert link, login_page.text
    register_page = Form((await browser.get(html.unescape(link.group(1)))).text)
    created = await browser.post(
        "/register",
        data={
            "email": "new@example.com",
            "password": PASSWORD,
            "csrf_token": register_page.value("csrf_token") or "",
            "next": register_page.value("next") or "",
        },
        follow_redirects=False,
    )
    assert created.status_code == 303
    assert created.headers["location"].startswith("/oauth/authorize?")
    final = await browser.get(created.headers["location"], follow_redirects=False)
    assert "code" in query_of(final.headers["location"])
