"""Discovery documents: ``/.well-known/jwks.json`` and RFC 8414 metadata."""

from __future__ import annotations

import json

import httpx
from fastapi import FastAPI
from joserfc.util import urlsafe_b64decode
from tests.server.token_support import (
    BASE,
    app,
    bearer,
    browser,
    build_app,
    client,
    clock,
    keyturn_of,
    tokens,
)

from keyturn.keys.records import PRIVATE_JWK_MEMBERS

__all__ = ["app", "browser", "build_app", "client", "clock"]


def kid_of(token: str) -> str:
    header = json.loads(urlsafe_b64decode(token.split(".")[0].encode()))
    kid: str = header["kid"]
    return kid


async def test_jwks_publishes_public_signing_keys_only(client: httpx.AsyncClient) -> None:
    """Every key has kid, alg and use "sig", no private member; cacheable for 5 minutes."""
    response = await client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    keys = response.json()["keys"]
    assert keys
    for key in keys:
        assert key["use"] == "sig" and key["alg"] in ("ES256", "EdDSA", "RS256") and key["kid"]
        assert not set(key) & PRIVATE_JWK_MEMBERS
    assert len({key["kid"] for key in keys}) == len(keys)


async def test_metadata_is_built_from_the_issuer(client: httpx.AsyncClient) -> None:
    """Both metadata paths serve URLs under the issuer; the OpenID document carries
    every RFC 8414 member with the same value."""
    oauth = await client.get("/.well-known/oauth-authorization-server")
    openid = await client.get("/.well-known/openid-configuration")
    assert oauth.status_code == openid.status_code == 200
    for member, value in oauth.json().items():
        assert openid.json()[member] == value, member
    body = oauth.json()
    assert body["issuer"] == BASE
    assert body["token_endpoint"] == f"{BASE}/oauth/token"
    assert body["jwks_uri"] == f"{BASE}/.well-known/jwks.json"
    assert body["revocation_endpoint"] == f"{BASE}/oauth/revoke"
    assert body["introspection_endpoint"] == f"{BASE}/oauth/introspect"
    # token_settings turn --password-grant on (test_password_grant covers it off).
    assert body["grant_types_supported"] == [
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "password",
    ]
    assert body["introspection_endpoint_auth_methods_supported"] == ["client_secret_basic"]
    assert "client_secret_basic" in body["token_endpoint_auth_methods_supported"]


async def test_rotation_publishes_the_new_key_and_keeps_the_old(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """After a rotation new tokens carry the new kid, both kids are in the JWKS and
    a token signed by the old key still works."""
    old = (await tokens(client))["access_token"]
    await keyturn_of(app).keys.rotate()
    new = (await tokens(client))["access_token"]
    assert kid_of(new) != kid_of(old)
    kids = {key["kid"] for key in (await client.get("/.well-known/jwks.json")).json()["keys"]}
    assert {kid_of(old), kid_of(new)} <= kids
    assert (await client.get("/auth/whoami", headers=bearer(old))).status_code == 200
    assert (await client.get("/auth/whoami", headers=bearer(new))).status_code == 200


async def test_metadata_names_the_client_auth_methods(client: httpx.AsyncClient) -> None:
    """RFC 8414: the token endpoint takes client_secret_basic, client_secret_post
    and none (public clients); the code flow's endpoints and rules are named (#12)."""
    body = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert body["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
        "none",
    ]
    assert "client_credentials" in body["grant_types_supported"]
    # The code flow (#12): the authorization endpoint, PAR, S256 only, iss in the response.
    assert body["authorization_endpoint"] == f"{BASE}/oauth/authorize"
    assert body["pushed_authorization_request_endpoint"] == f"{BASE}/oauth/par"
    assert body["response_types_supported"] == ["code"]
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["authorization_response_iss_parameter_supported"] is True
