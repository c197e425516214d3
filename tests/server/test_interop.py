"""Interop against a live ``keyturn serve`` (real uvicorn), with clients nobody here
wrote: PyJWT's ``PyJWKClient`` and ``jwt.decode``, Authlib's ``OAuth2Client``, and
keyturn's own ``RemoteVerifier`` as a downstream service would use it.

The issuer is the server's own URL (``http://127.0.0.1:PORT``), which is also the
default audience.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from authlib.integrations.httpx_client import OAuth2Client
from tests.live import LiveServer, LiveServers

from keyturn.errors import InvalidToken
from keyturn.tokens.remote import RemoteVerifier

EMAIL = "interop@example.com"
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One live server with one account for the module (starting one costs seconds)."""
    servers = LiveServers(tmp_path_factory.mktemp("interop"))
    try:
        # Tokens come from the password grant here, so it is turned on (#12: off by default).
        started = servers("--password-grant")
        started.add_user(EMAIL, PASSWORD)
        yield started
    finally:
        servers.stop_all()


def confidential_client(server: LiveServer) -> tuple[str, str]:
    """``keyturn client add NAME --confidential --grant password --grant refresh_token
    --json``: (client_id, client_secret)."""
    result = server.cli(
        "client",
        "add",
        "interop",
        "--confidential",
        "--grant",
        "password",
        "--grant",
        "refresh_token",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    return created["client_id"], created["client_secret"]


def password_grant(server: LiveServer) -> dict[str, Any]:
    with server.client() as http:
        response = http.post(
            "/oauth/token",
            data={"grant_type": "password", "username": EMAIL, "password": PASSWORD},
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_pyjwt_verifies_our_tokens_from_the_jwks_before_and_after_rotation(
    server: LiveServer,
) -> None:
    """PyJWKClient finds the signing key by kid in our JWKS and jwt.decode accepts the
    token (ES256, iss, aud); after `keyturn key rotate` new tokens verify too."""
    issuer = server.url
    keys = jwt.PyJWKClient(f"{issuer}/.well-known/jwks.json", cache_keys=False)
    token = password_grant(server)["access_token"]
    key = keys.get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["ES256"], audience=issuer, issuer=issuer)
    assert claims["iss"] == issuer and claims["sid"] and claims["jti"]
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"

    old_kid = key.key_id
    result = server.cli("key", "rotate")
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 10
    while True:  # the server picks the new key up within its staleness bound
        token = password_grant(server)["access_token"]
        if jwt.get_unverified_header(token)["kid"] != old_kid or time.monotonic() > deadline:
            break
        time.sleep(0.25)
    # PyJWKClient refetches for an unknown kid only after its cooldown (30 s):
    # a fresh client stands for one whose cooldown has passed.
    keys = jwt.PyJWKClient(f"{issuer}/.well-known/jwks.json", cache_keys=False)
    key = keys.get_signing_key_from_jwt(token)
    assert key.key_id != old_kid
    assert old_kid in {k.key_id for k in keys.get_signing_keys()}  # the old key verifies on
    claims = jwt.decode(token, key.key, algorithms=["ES256"], audience=issuer, issuer=issuer)
    assert claims["iss"] == issuer


def test_authlib_password_grant_call_refresh_call_and_introspection(server: LiveServer) -> None:
    """Authlib's OAuth2Client: password grant with client_secret_basic, a call, a
    refresh and a call again; the client introspects its token."""
    client_id, secret = confidential_client(server)
    token_endpoint = f"{server.url}/oauth/token"
    with OAuth2Client(client_id, secret, timeout=10) as oauth:
        token = oauth.fetch_token(
            token_endpoint, grant_type="password", username=EMAIL, password=PASSWORD
        )
        assert token["token_type"] == "Bearer" and token["refresh_token"]
        who = oauth.get(f"{server.url}/auth/whoami")
        assert who.status_code == 200 and who.json()["via"] == "token"
        first_sid = who.json()["session_id"]

        refreshed = oauth.refresh_token(token_endpoint, refresh_token=token["refresh_token"])
        assert refreshed["access_token"] != token["access_token"]
        assert refreshed["refresh_token"] != token["refresh_token"]
        who = oauth.get(f"{server.url}/auth/whoami")
        assert who.status_code == 200 and who.json()["session_id"] == first_sid

    with server.client(auth=httpx.BasicAuth(client_id, secret)) as http:
        answer = http.post("/oauth/introspect", data={"token": refreshed["access_token"]})
        assert answer.status_code == 200 and answer.json()["active"] is True
        assert answer.json()["sub"]
        old = http.post("/oauth/introspect", data={"token": "not a token"})
        assert old.json() == {"active": False}


async def test_remote_verifier_against_a_live_server(server: LiveServer) -> None:
    """RemoteVerifier with only the issuer URL accepts a live token; after
    /auth/logout-all, strict mode (introspection) refuses it while signature-only
    mode still accepts it until exp."""
    client_id, secret = confidential_client(server)
    pair = password_grant(server)
    issuer = server.url
    strict = RemoteVerifier(
        issuer, audience=issuer, introspection=(client_id, secret), introspection_cache_ttl=0
    )
    signature_only = RemoteVerifier(issuer, audience=issuer)
    async with strict, signature_only:
        claims = await strict.verify(pair["access_token"])
        assert claims.iss == issuer
        assert (await signature_only.verify(pair["access_token"])).jti == claims.jti
        async with httpx.AsyncClient(base_url=issuer) as http:
            response = await http.post(
                "/auth/logout-all", headers={"Authorization": f"Bearer {pair['access_token']}"}
            )
            assert response.status_code == 204
        with pytest.raises(InvalidToken):
            await strict.verify(pair["access_token"])
        assert (await signature_only.verify(pair["access_token"])).jti == claims.jti


async def test_authlib_client_credentials_and_a_downstream_verifier(server: LiveServer) -> None:
    """Authlib's OAuth2Client gets a client_credentials token with
    client_secret_basic (#12); a downstream RemoteVerifier, strict (introspection)
    and signature-only, accepts it without a sid; after RFC 7009 revocation by
    its client, strict mode refuses it."""
    result = server.cli(
        "client", "add", "svc", "--confidential", "--grant", "client_credentials", "--json"
    )
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    client_id, secret = created["client_id"], created["client_secret"]
    with OAuth2Client(client_id, secret, timeout=10) as oauth:
        token = oauth.fetch_token(
            f"{server.url}/oauth/token", grant_type="client_credentials", scope="openid"
        )
    assert "refresh_token" not in token and token["scope"] == "openid"
    issuer = server.url
    strict = RemoteVerifier(
        issuer, audience=issuer, introspection=(client_id, secret), introspection_cache_ttl=0
    )
    signature_only = RemoteVerifier(issuer, audience=issuer)
    async with strict, signature_only:
        claims = await strict.verify(token["access_token"])
        assert claims.sub == claims.client_id == client_id and claims.for_client
        assert (await signature_only.verify(token["access_token"])).jti == claims.jti
        async with httpx.AsyncClient(base_url=issuer, auth=httpx.BasicAuth(client_id, secret)) as h:
            revoked = await h.post("/oauth/revoke", data={"token": token["access_token"]})
            assert revoked.status_code == 200
        with pytest.raises(InvalidToken):
            await strict.verify(token["access_token"])
