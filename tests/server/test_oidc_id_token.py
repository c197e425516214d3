"""ID tokens at the code grant (SPEC "OpenID Connect", OIDC Core 1.0 sections 2 and
3.1.3.6): signed RS256 by default with a key of its own in the JWKS, every claim a
relying party checks, and a fresh ``auth_time`` after ``prompt=login`` / ``max_age``."""

from __future__ import annotations

import base64
import hashlib

import httpx
from fastapi import FastAPI
from joserfc import jws
from tests.server.code_flow_support import authorize, authorize_params, pkce, query_of
from tests.server.oidc_support import app, browser, oidc_client, sign_in_app, verified_claims
from tests.server.token_support import BASE, EMAIL, PASSWORD, build_app, clock, keyturn_of

from keyturn.clock import FrozenClock

__all__ = ["app", "browser", "build_app", "clock"]


def left_half_sha256(value: str) -> str:
    """OIDC Core 3.1.3.6's at_hash for RS256, computed independently."""
    digest = hashlib.sha256(value.encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def test_openid_scope_returns_an_rs256_id_token_with_every_claim(
    app: FastAPI, browser: httpx.AsyncClient
) -> None:
    """openid + email: an RS256 ID token (typ JWT) whose iss, sub, aud, exp, iat,
    auth_time, nonce, at_hash, sid and email claims are right and verify by JWKS."""
    client = await oidc_client(app)
    body = await sign_in_app(browser, client, scope="openid email", nonce="n-0S6_WzA2Mj")
    header, claims = await verified_claims(browser, body["id_token"])
    assert header["alg"] == "RS256" and header["typ"] == "JWT"
    whoami = (await browser.get("/auth/whoami")).json()
    assert claims["iss"] == BASE
    assert claims["sub"] == whoami["sub"]
    assert claims["aud"] == client.id
    assert claims["exp"] > claims["iat"]
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["at_hash"] == left_half_sha256(body["access_token"])
    assert claims["sid"] == whoami["session_id"]
    assert claims["email"] == EMAIL
    assert isinstance(claims["auth_time"], int) and claims["auth_time"] <= claims["iat"]
    # The access token keeps the server's own algorithm and is not an ID token.
    access_header = dict(jws.extract_compact(body["access_token"].encode()).headers())
    assert access_header["typ"] == "at+jwt" and access_header["kid"] != header["kid"]


async def test_no_openid_scope_means_no_id_token(app: FastAPI, browser: httpx.AsyncClient) -> None:
    """Without openid the token answer has no id_token (plain OAuth)."""
    client = await oidc_client(app)
    body = await sign_in_app(browser, client, scope="profile")
    assert "id_token" not in body


async def test_email_claims_only_with_the_email_scope_and_nonce_only_when_sent(
    app: FastAPI, browser: httpx.AsyncClient
) -> None:
    """openid alone: no email claim; no nonce was sent, so none comes back."""
    client = await oidc_client(app)
    body = await sign_in_app(browser, client, scope="openid")
    _, claims = await verified_claims(browser, body["id_token"])
    assert "email" not in claims and "email_verified" not in claims
    assert "nonce" not in claims


async def test_client_id_token_alg_picks_the_signing_key(
    app: FastAPI, browser: httpx.AsyncClient
) -> None:
    """A client registered with --id-token-alg ES256 gets ES256 ID tokens; RS256
    clients RS256; both keys are in the JWKS."""
    es = await oidc_client(app, id_token_alg="ES256")
    rs = await oidc_client(app)
    es_header, _ = await verified_claims(browser, (await sign_in_app(browser, es))["id_token"])
    rs_header, _ = await verified_claims(browser, (await sign_in_app(browser, rs))["id_token"])
    assert (es_header["alg"], rs_header["alg"]) == ("ES256", "RS256")
    kids = {key["kid"] for key in (await browser.get("/.well-known/jwks.json")).json()["keys"]}
    assert {es_header["kid"], rs_header["kid"]} <= kids


async def test_rotating_rs256_signs_new_id_tokens_with_the_new_key(
    app: FastAPI, browser: httpx.AsyncClient
) -> None:
    """After rotate("RS256") ID tokens carry the new kid; the old one stays in the JWKS."""
    client = await oidc_client(app)
    first, _ = await verified_claims(browser, (await sign_in_app(browser, client))["id_token"])
    rotated = await keyturn_of(app).keys.rotate("RS256")
    second, _ = await verified_claims(browser, (await sign_in_app(browser, client))["id_token"])
    assert second["kid"] == rotated.kid != first["kid"]
    kids = {key["kid"] for key in (await browser.get("/.well-known/jwks.json")).json()["keys"]}
    assert {first["kid"], second["kid"]} <= kids


async def test_max_age_forces_a_fresh_sign_in_and_a_fresh_auth_time(
    app: FastAPI, browser: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """A sign-in older than max_age sends the user to /login; after signing in
    again the ID token's auth_time is the new sign-in's."""
    client = await oidc_client(app)
    _, before = await verified_claims(browser, (await sign_in_app(browser, client))["id_token"])
    clock.advance(120)
    proof = pkce()
    params = authorize_params(client, proof, max_age="60")
    response = await authorize(browser, params)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    relogin = await browser.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert relogin.status_code == 200
    browser.headers["X-CSRF-Token"] = relogin.json()["csrf_token"]
    body = await sign_in_app(browser, client, max_age="60")
    _, after = await verified_claims(browser, body["id_token"])
    assert after["auth_time"] >= before["auth_time"] + 120
    again = await authorize(browser, authorize_params(client, pkce(), max_age="60"))
    assert "code" in query_of(again.headers["location"])  # fresh enough now
