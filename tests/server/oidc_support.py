"""Helpers for the OpenID Connect tests: a signed-in browser on a SQLite app, an
OIDC client, the code flow down to the token answer, and ID token checks against
the published JWKS (as a relying party would do them, with joserfc)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from joserfc import jws
from joserfc.jwk import KeySet
from tests.server.code_flow_support import (
    RegisteredClient,
    authorize_params,
    exchange,
    get_code,
    pkce,
)
from tests.server.token_support import BASE, EMAIL, PASSWORD, MakeClient, keyturn_of, login


@pytest.fixture
def app(build_app: Callable[..., FastAPI], sqlite_url: str) -> FastAPI:
    """The app on a SQLite file (OIDC logic is store-independent above the stores)."""
    return build_app(sqlite_url)


@pytest.fixture
async def browser(make_client: MakeClient, app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A browser with a registered, signed-in account."""
    async with make_client(app=app, base_url=BASE) as opened:
        response = await opened.post("/auth/register", json={"email": EMAIL, "password": PASSWORD})
        assert response.status_code == 201, response.text
        opened.headers["X-CSRF-Token"] = await login(opened)
        yield opened


async def oidc_client(
    app: FastAPI,
    *,
    confidential: bool = True,
    id_token_alg: str | None = None,
    redirect_uri: str = "https://rp.example/cb",
    post_logout: tuple[str, ...] = ("https://rp.example/bye",),
    backchannel: str | None = None,
) -> RegisteredClient:
    """A first-party OIDC relying party registered on ``app``."""
    created = await keyturn_of(app).clients.add(
        "Relying party",
        confidential=confidential,
        first_party=True,
        redirect_uris=(redirect_uri,),
        post_logout_redirect_uris=post_logout,
        backchannel_logout_uri=backchannel,
        id_token_alg=id_token_alg,
    )
    return RegisteredClient(created.client.id, created.secret, redirect_uri)


async def sign_in_app(
    browser: httpx.AsyncClient, client: RegisteredClient, **params: str | None
) -> dict[str, Any]:
    """The code flow for ``client`` on the signed-in ``browser``: the token answer."""
    proof = pkce()
    code = await get_code(browser, authorize_params(client, proof, **params))
    response = await exchange(browser, client, code, proof.verifier)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def verified_claims(
    browser: httpx.AsyncClient, id_token: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ID token's header and claims, its signature checked against the JWKS
    with the algorithm the JWK pins."""
    jwks = (await browser.get("/.well-known/jwks.json")).json()
    header = dict(jws.extract_compact(id_token.encode()).headers())
    keys = KeySet.import_key_set(jwks)
    key = keys.get_by_kid(header["kid"])
    jwk_alg = next(k["alg"] for k in jwks["keys"] if k["kid"] == header["kid"])
    assert header["alg"] == jwk_alg
    obj = jws.deserialize_compact(id_token, key, algorithms=[jwk_alg])
    return dict(obj.headers()), json.loads(obj.payload)
