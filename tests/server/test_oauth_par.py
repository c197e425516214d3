"""``POST /oauth/par`` (RFC 9126) and ``request_uri`` at ``/oauth/authorize``, black-box."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.server.code_flow_support import (
    RegisteredClient,
    authorize,
    authorize_params,
    exchange,
    lite_app,
    pkce,
    query_of,
    register_client,
    signed_in_browser,
)
from tests.server.token_support import (
    build_app,
    clock,
)

from keyturn.clock import FrozenClock

__all__ = ["build_app", "clock", "lite_app", "signed_in_browser"]


@pytest.fixture
async def web_app(lite_app: FastAPI, browser: httpx.AsyncClient) -> RegisteredClient:
    """A first-party confidential client."""
    return await register_client(
        lite_app, name="Web app", confidential=True, redirect_uris=("https://web.example/cb",)
    )


async def push(
    browser: httpx.AsyncClient, client: RegisteredClient, params: dict[str, str], **kw: Any
) -> httpx.Response:
    """``POST /oauth/par`` authenticated with HTTP Basic (unless ``auth=None``)."""
    auth = kw.pop("auth", (client.id, client.secret or ""))
    return await browser.post("/oauth/par", data=params, auth=auth)


async def test_pushed_request_gives_a_request_uri_that_authorizes_once(
    browser: httpx.AsyncClient, web_app: RegisteredClient
) -> None:
    """201 {request_uri, expires_in}; /oauth/authorize with it gives the code (state
    from the push); a second use is the 400 error page."""
    proof = pkce()
    params = authorize_params(web_app, proof)
    pushed = await push(browser, web_app, params)
    assert pushed.status_code == 201, pushed.text
    assert pushed.headers["cache-control"] == "no-store"
    body = pushed.json()
    assert body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    assert body["expires_in"] == 60
    query = {"client_id": web_app.id, "request_uri": body["request_uri"]}
    answered = await authorize(browser, query)
    assert answered.status_code == 303
    result = query_of(answered.headers["location"])
    assert result["state"] == params["state"]
    tokens = await exchange(browser, web_app, result["code"], proof.verifier)
    assert tokens.status_code == 200, tokens.text
    again = await authorize(browser, query)
    assert again.status_code == 400
    assert "location" not in again.headers


async def test_parameters_beside_request_uri_are_ignored(
    browser: httpx.AsyncClient, web_app: RegisteredClient
) -> None:
    """Only the pushed parameters count: a scope or redirect_uri added in the browser is ignored."""
    pushed = (
        await push(browser, web_app, authorize_params(web_app, pkce(), scope="openid"))
    ).json()
    query = {
        "client_id": web_app.id,
        "request_uri": pushed["request_uri"],
        "redirect_uri": "https://evil.example/cb",
    }
    answered = await authorize(browser, query)
    assert answered.headers["location"].startswith(web_app.redirect_uri + "?code=")


async def test_request_uri_is_bound_to_its_client_and_expires(
    lite_app: FastAPI, browser: httpx.AsyncClient, web_app: RegisteredClient, clock: FrozenClock
) -> None:
    """Another client's request_uri, or one past its 60 s: the 400 error page."""
    other = await register_client(lite_app, name="Other")
    pushed = (await push(browser, web_app, authorize_params(web_app, pkce()))).json()
    stolen = await authorize(browser, {"client_id": other.id, "request_uri": pushed["request_uri"]})
    assert stolen.status_code == 400
    clock.advance(61)
    late = await authorize(browser, {"client_id": web_app.id, "request_uri": pushed["request_uri"]})
    assert late.status_code == 400
    made_up = "urn:ietf:params:oauth:request_uri:" + "A" * 43
    assert (
        await authorize(browser, {"client_id": web_app.id, "request_uri": made_up})
    ).status_code == 400


async def test_push_needs_client_authentication(
    browser: httpx.AsyncClient, web_app: RegisteredClient
) -> None:
    """A confidential client pushing without (or with a wrong) secret: 401 invalid_client."""
    params = authorize_params(web_app, pkce())
    anonymous = await push(browser, web_app, {**params}, auth=None)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "invalid_client"
    wrong = await push(browser, web_app, params, auth=(web_app.id, "wrong"))
    assert wrong.status_code == 401


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"redirect_uri": "https://evil.example/cb"}, "invalid_redirect_uri"),
        ({"scope": "admin"}, "invalid_scope"),
        ({"request_uri": "urn:ietf:params:oauth:request_uri:x"}, "invalid_request"),
    ],
)
async def test_invalid_pushes_are_400_json_never_a_redirect(
    browser: httpx.AsyncClient,
    web_app: RegisteredClient,
    changes: dict[str, str],
    error: str,
) -> None:
    """An invalid pushed request is a 400 RFC 6749 JSON error, not a redirect."""
    response = await push(browser, web_app, authorize_params(web_app, pkce(), **changes))
    assert response.status_code == 400, response.text
    assert response.json()["error"] == error
    assert "location" not in response.headers


async def test_public_client_may_push_with_its_client_id(
    lite_app: FastAPI, browser: httpx.AsyncClient
) -> None:
    """A public client names itself with client_id (no secret) and may push too."""
    spa = await register_client(lite_app, name="SPA")
    response = await browser.post("/oauth/par", data=authorize_params(spa, pkce()))
    assert response.status_code == 201, response.text
