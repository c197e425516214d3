"""Authlib's OpenID Connect client side against a live ``keyturn serve`` (issue #13,
item 7): discovery, code + PKCE + nonce, ID token validation with Authlib's
``CodeIDToken`` rules (iss, aud, exp, iat, nonce, at_hash) over the published
JWKS, userinfo, and refresh."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken
from tests.live import LiveServer, server_with_account
from tests.server.test_interop_code_flow import (
    APP_REDIRECT,
    EMAIL,
    PASSWORD,
    add_client,
    sign_in_and_authorize,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One live server with the account the shared sign-in helper uses."""
    with server_with_account(
        tmp_path_factory.mktemp("interop-oidc-authlib"), EMAIL, PASSWORD
    ) as started:
        yield started


async def test_authlib_validates_the_id_token_and_reads_userinfo(server: LiveServer) -> None:
    """Authlib discovers the endpoints, gets an ID token that passes its
    CodeIDToken validation (nonce, at_hash included), reads userinfo for the same
    sub, and refreshes."""
    created = add_client(server, "--first-party", "--confidential")
    async with httpx.AsyncClient() as plain:
        metadata = (await plain.get(server.url + "/.well-known/openid-configuration")).json()
        jwks = JsonWebKey.import_key_set((await plain.get(metadata["jwks_uri"])).json())
    verifier, nonce = generate_token(48), generate_token(20)
    async with AsyncOAuth2Client(
        client_id=created["client_id"],
        client_secret=created["client_secret"],
        redirect_uri=APP_REDIRECT,
        scope="openid email",
        code_challenge_method="S256",
    ) as app:
        url, state = app.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        redirect = await sign_in_and_authorize(server, url)
        token = await app.fetch_token(
            metadata["token_endpoint"],
            authorization_response=redirect,
            code_verifier=verifier,
            state=state,
        )
        claims = jwt.decode(
            token["id_token"],
            jwks,
            claims_cls=CodeIDToken,
            claims_options={"iss": {"essential": True, "value": metadata["issuer"]}},
            claims_params={
                "nonce": nonce,
                "client_id": created["client_id"],
                "access_token": token["access_token"],
            },
        )
        claims.validate()
        assert claims["email"] == EMAIL
        userinfo = await app.get(metadata["userinfo_endpoint"])
        assert userinfo.status_code == 200
        assert userinfo.json()["sub"] == claims["sub"]
        refreshed = await app.refresh_token(metadata["token_endpoint"])
        assert refreshed["access_token"] != token["access_token"]
