"""``POST /oauth/token`` with ``grant_type=authorization_code``, black-box (SPEC "Token
endpoint, extended"): client authentication, single use and replay revocation, the
60 s lifetime, the bindings, and refresh families that end with their browser session.

The happy path and the race run on SQLite and PostgreSQL (``app``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI
from tests.server.code_flow_support import (
    RegisteredClient,
    authorize,
    authorize_params,
    exchange,
    get_code,
    pkce,
    query_of,
    register_client,
)
from tests.server.token_support import (
    BASE,
    EMAIL,
    PASSWORD,
    MakeClient,
    app,
    build_app,
    clock,
    login,
    refresh,
    whoami_status,
)

from keyturn.clock import FrozenClock

__all__ = ["app", "build_app", "clock"]


@pytest.fixture
async def browser(make_client: MakeClient, app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-in browser on ``app`` (SQLite, then PostgreSQL)."""
    async with make_client(app=app, base_url=BASE) as opened:
        response = await opened.post("/auth/register", json={"email": EMAIL, "password": PASSWORD})
        assert response.status_code == 201
        opened.headers["X-CSRF-Token"] = await login(opened)
        yield opened


@pytest.fixture
async def spa(app: FastAPI, browser: httpx.AsyncClient) -> RegisteredClient:
    """A first-party public client."""
    return await register_client(app, name="SPA")


@pytest.fixture
async def web_app(app: FastAPI, browser: httpx.AsyncClient) -> RegisteredClient:
    """A first-party confidential client (a server-side web app)."""
    return await register_client(
        app, name="Web app", confidential=True, redirect_uris=("https://web.example/cb",)
    )


async def code_for(browser: httpx.AsyncClient, client: RegisteredClient) -> tuple[str, str]:
    """A fresh code and its PKCE verifier."""
    proof = pkce()
    return await get_code(browser, authorize_params(client, proof)), proof.verifier


def assert_invalid_grant(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"
    assert response.headers["cache-control"] == "no-store"


async def test_public_client_exchanges_a_code_with_pkce(
    browser: httpx.AsyncClient, spa: RegisteredClient
) -> None:
    """Public client + PKCE (auth method none): access and refresh token, scope, no-store."""
    code, verifier = await code_for(browser, spa)
    response = await exchange(browser, spa, code, verifier)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] > 0
    assert body["scope"] == "openid email"
    assert body["refresh_token"].startswith("ktr_")
    assert await whoami_status(browser, body["access_token"]) == 200
    rotated = await refresh(browser, body["refresh_token"], client_id=spa.id)
    assert rotated.status_code == 200, rotated.text


@pytest.mark.parametrize("basic_auth", [True, False], ids=["client_secret_basic", "post"])
async def test_confidential_client_authenticates_basic_or_post(
    browser: httpx.AsyncClient, web_app: RegisteredClient, basic_auth: bool
) -> None:
    """client_secret_basic and client_secret_post both work for a confidential client."""
    code, verifier = await code_for(browser, web_app)
    response = await exchange(browser, web_app, code, verifier, basic_auth=basic_auth)
    assert response.status_code == 200, response.text


async def test_confidential_client_without_its_secret_is_invalid_client(
    browser: httpx.AsyncClient, web_app: RegisteredClient
) -> None:
    """A confidential client must authenticate: no or a wrong secret is 401 invalid_client,
    and the code stays redeemable by the real client."""
    code, verifier = await code_for(browser, web_app)
    anonymous = RegisteredClient(web_app.id, None, web_app.redirect_uri)
    response = await exchange(browser, anonymous, code, verifier)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    wrong = RegisteredClient(web_app.id, "not-the-secret", web_app.redirect_uri)
    assert (await exchange(browser, wrong, code, verifier)).status_code == 401
    assert (await exchange(browser, web_app, code, verifier)).status_code == 200


async def test_two_parallel_exchanges_of_one_code_exactly_one_succeeds(
    browser: httpx.AsyncClient, spa: RegisteredClient
) -> None:
    """The race: the same code exchanged twice at once gives one 200 and one invalid_grant."""
    code, verifier = await code_for(browser, spa)
    first, second = await asyncio.gather(
        exchange(browser, spa, code, verifier), exchange(browser, spa, code, verifier)
    )
    statuses = sorted([first.status_code, second.status_code])
    assert statuses == [200, 400], (first.text, second.text)
    loser = first if first.status_code == 400 else second
    assert loser.json()["error"] == "invalid_grant"


async def test_replaying_a_code_revokes_what_it_issued(
    browser: httpx.AsyncClient, spa: RegisteredClient
) -> None:
    """A second use of a code is invalid_grant and ends the first use's tokens."""
    code, verifier = await code_for(browser, spa)
    body = (await exchange(browser, spa, code, verifier)).json()
    assert_invalid_grant(await exchange(browser, spa, code, verifier))
    assert await whoami_status(browser, body["access_token"]) == 401
    assert_invalid_grant(await refresh(browser, body["refresh_token"], client_id=spa.id))


async def test_a_code_lives_at_most_60_seconds(
    browser: httpx.AsyncClient, spa: RegisteredClient, clock: FrozenClock
) -> None:
    """A code redeemed after 60 s is invalid_grant."""
    code, verifier = await code_for(browser, spa)
    clock.advance(61)
    assert_invalid_grant(await exchange(browser, spa, code, verifier))


async def test_the_code_is_bound_to_client_redirect_uri_and_verifier(
    app: FastAPI, browser: httpx.AsyncClient, spa: RegisteredClient
) -> None:
    """Another client, another redirect URI or a wrong verifier: invalid_grant; the
    right request still redeems the code afterwards."""
    other = await register_client(app, name="Other SPA")
    code, verifier = await code_for(browser, spa)
    assert_invalid_grant(
        await exchange(browser, other, code, verifier, redirect_uri=spa.redirect_uri)
    )
    assert_invalid_grant(
        await exchange(browser, spa, code, verifier, redirect_uri="https://app.example/other")
    )
    assert_invalid_grant(await exchange(browser, spa, code, pkce().verifier))
    assert_invalid_grant(await exchange(browser, spa, code, ""))
    assert (await exchange(browser, spa, code, verifier)).status_code == 200


async def test_no_refresh_token_without_the_refresh_grant(
    app: FastAPI, browser: httpx.AsyncClient
) -> None:
    """A client registered without refresh_token gets an access token only."""
    only_code = await register_client(app, name="No refresh", grants=("authorization_code",))
    code, verifier = await code_for(browser, only_code)
    body = (await exchange(browser, only_code, code, verifier)).json()
    assert "refresh_token" not in body
    assert await whoami_status(browser, body["access_token"]) == 200


async def test_signing_out_the_browser_session_ends_its_apps_tokens(
    browser: httpx.AsyncClient, spa: RegisteredClient
) -> None:
    """The refresh family belongs to the browser session: signing that session out
    ends the family and its access tokens."""
    code, verifier = await code_for(browser, spa)
    body = (await exchange(browser, spa, code, verifier)).json()
    assert (await browser.post("/auth/logout")).status_code == 204
    assert await whoami_status(browser, body["access_token"]) == 401
    assert_invalid_grant(await refresh(browser, body["refresh_token"], client_id=spa.id))


async def test_revoking_the_session_by_handle_ends_its_families(
    make_client: MakeClient, app: FastAPI, browser: httpx.AsyncClient, spa: RegisteredClient
) -> None:
    """Ending the code's session from another sign-in (DELETE /auth/sessions/{id}, as
    /account and the CLI do) ends the app's tokens; the other sign-in stays."""
    code, verifier = await code_for(browser, spa)
    body = (await exchange(browser, spa, code, verifier)).json()
    current = next(s for s in (await browser.get("/auth/sessions")).json() if s["current"])
    async with make_client(app=app, base_url=BASE) as laptop:
        laptop.headers["X-CSRF-Token"] = await login(laptop)
        response = await laptop.delete(f"/auth/sessions/{current['id']}")
        assert response.status_code == 204
        assert (await laptop.get("/auth/whoami")).status_code == 200
    assert await whoami_status(browser, body["access_token"]) == 401
    assert_invalid_grant(await refresh(browser, body["refresh_token"], client_id=spa.id))


async def test_a_code_whose_session_ended_gives_nothing(
    browser: httpx.AsyncClient, spa: RegisteredClient
) -> None:
    """A code issued in a session that was signed out before the exchange: invalid_grant."""
    code, verifier = await code_for(browser, spa)
    assert (await browser.post("/auth/logout")).status_code == 204
    assert_invalid_grant(await exchange(browser, spa, code, verifier))


async def test_unknown_grant_parameters_are_refused(
    browser: httpx.AsyncClient, spa: RegisteredClient
) -> None:
    """Missing code or redirect_uri: invalid_request; a garbage code: invalid_grant."""
    response = await browser.post(
        "/oauth/token", data={"grant_type": "authorization_code", "client_id": spa.id}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert_invalid_grant(await exchange(browser, spa, "x" * 43, pkce().verifier))


async def test_spa_may_take_the_code_grants_refresh_token_as_a_cookie(
    make_client: MakeClient, build_app: Callable[..., FastAPI], sqlite_url: str
) -> None:
    """With --refresh-cookie, a code exchange with refresh_cookie=true sets the
    HttpOnly refresh cookie and keeps the refresh token out of the body."""
    app = build_app(sqlite_url, refresh_cookie=True)
    async with make_client(app=app, base_url=BASE) as browser:
        response = await browser.post("/auth/register", json={"email": EMAIL, "password": PASSWORD})
        assert response.status_code == 201
        await login(browser)
        spa = await register_client(app, name="SPA")
        proof = pkce()
        answered = await authorize(browser, authorize_params(spa, proof))
        code = query_of(answered.headers["location"])["code"]
        tokens = await exchange(browser, spa, code, proof.verifier, refresh_cookie="true")
        assert tokens.status_code == 200, tokens.text
        body = tokens.json()
        assert "refresh_token" not in body and "refresh_csrf" in body
        cookie = next(
            h
            for h in tokens.headers.get_list("set-cookie")
            if h.startswith("__Secure-keyturn_refresh=")
        )
        assert "HttpOnly" in cookie and "Path=/oauth/token" in cookie
