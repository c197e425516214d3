"""Authlib's ``AsyncOAuth2Client`` runs the whole authorization code + PKCE flow against a
live ``keyturn serve`` (issue #12, item 6): authorization URL, the user's sign-in at
keyturn's page, the code at the redirect URI, the token exchange, an API call, a
refresh, and revocation.

The "browser" here is plain httpx carrying the two ``__Host-`` cookies by hand
(they are ``Secure``, and Python's cookie jar keeps those for https only; a real
browser treats ``http://127.0.0.1`` as a secure context).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client
from tests.live import LiveServer, server_with_account

EMAIL = "authlib@example.com"
PASSWORD = "correct horse battery staple"
REDIRECT = "http://127.0.0.1/callback"
#: The port the "app" claims to listen on: a loopback redirect matches any port.
APP_REDIRECT = "http://127.0.0.1:8765/callback"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """One live server with one account for the module."""
    with server_with_account(tmp_path_factory.mktemp("interop-code"), EMAIL, PASSWORD) as started:
        yield started


def add_client(server: LiveServer, *flags: str) -> dict[str, Any]:
    """``keyturn client add ... --redirect-uri http://127.0.0.1/callback --json``."""
    done = server.cli("client", "add", "authlib", "--redirect-uri", REDIRECT, *flags, "--json")
    assert done.returncode == 0, done.stderr
    created: dict[str, Any] = json.loads(done.stdout)
    return created


def _cookie(response: httpx.Response, name: str) -> str:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(name + "="):
            return header.split(";", 1)[0]
    raise AssertionError(f"no {name} cookie in {response.headers}")


async def sign_in_and_authorize(server: LiveServer, authorization_url: str) -> str:
    """Play the browser: follow the authorization URL to keyturn's sign-in page,
    sign in, come back, and return the redirect carrying the code."""
    async with httpx.AsyncClient(base_url=server.url, follow_redirects=False) as browser:
        first = await browser.get(authorization_url)
        assert first.status_code == 303
        login_url = first.headers["location"]
        page = await browser.get(login_url)
        csrf_cookie = _cookie(page, "__Host-keyturn_csrf")
        form_token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        next_path = re.search(r'name="next" value="([^"]+)"', page.text)
        assert form_token and next_path
        signed_in = await browser.post(
            "/login",
            data={
                "email": EMAIL,
                "password": PASSWORD,
                "csrf_token": form_token.group(1),
                "next": next_path.group(1).replace("&amp;", "&"),
            },
            headers={"Cookie": csrf_cookie, "Origin": server.url},
        )
        assert signed_in.status_code == 303, signed_in.text
        session = _cookie(signed_in, "__Host-keyturn_session")
        back = await browser.get(signed_in.headers["location"], headers={"Cookie": session})
        assert back.status_code == 303, back.text
        location: str = back.headers["location"]
        return location


@pytest.mark.parametrize("confidential", [False, True], ids=["public", "confidential"])
async def test_authlib_runs_the_code_flow_with_pkce(server: LiveServer, confidential: bool) -> None:
    """Authlib builds the request (S256), keyturn answers with code, state and iss,
    Authlib exchanges the code (none or client_secret_basic), calls the API,
    refreshes and revokes."""
    created = add_client(server, "--first-party", *(["--confidential"] if confidential else []))
    verifier = generate_token(48)
    async with AsyncOAuth2Client(
        client_id=created["client_id"],
        client_secret=created["client_secret"],
        token_endpoint_auth_method="client_secret_basic" if confidential else "none",
        redirect_uri=APP_REDIRECT,
        scope="openid email",
        code_challenge_method="S256",
    ) as app:
        url, state = app.create_authorization_url(
            server.url + "/oauth/authorize", code_verifier=verifier
        )
        redirect = await sign_in_and_authorize(server, url)
        assert redirect.startswith(APP_REDIRECT + "?code=")
        assert httpx.URL(redirect).params["iss"] == server.url
        token = await app.fetch_token(
            server.url + "/oauth/token",
            authorization_response=redirect,
            code_verifier=verifier,
            state=state,
        )
        assert token["token_type"] == "Bearer"
        assert token["scope"] == "openid email"
        assert str(token["refresh_token"]).startswith("ktr_")
        whoami = await app.get(server.url + "/auth/whoami")
        assert whoami.status_code == 200 and whoami.json()["email"] == EMAIL
        refreshed = await app.refresh_token(server.url + "/oauth/token")
        assert refreshed["access_token"] != token["access_token"]
        revoked = await app.revoke_token(
            server.url + "/oauth/revoke", token=refreshed["refresh_token"]
        )
        assert revoked.status_code == 200
        secret = created["client_secret"]
        async with httpx.AsyncClient() as plain:
            again = await plain.post(
                server.url + "/oauth/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": refreshed["refresh_token"],
                    **({} if confidential else {"client_id": created["client_id"]}),
                },
                auth=(created["client_id"], secret) if confidential else None,
            )
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
