"""``grant_type=client_credentials`` at ``/oauth/token`` over HTTP (#12, RFC 6749
section 4.4): a confidential client registered with the grant gets an access token
whose ``sub`` and ``client_id`` are the client, with no refresh token and no
``sid``, within its scope allowlist, revocable in strict mode.

Runs on SQLite and PostgreSQL (the ``app`` fixture).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from tests.server.token_support import (
    app,
    basic,
    bearer,
    browser,
    build_app,
    clock,
    keyturn_of,
)

from keyturn.oauth.clients import NewClient

__all__ = ["app", "browser", "build_app", "clock"]


@pytest.fixture
async def http(browser: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the started app."""
    async with browser() as opened:
        yield opened


async def service(app: FastAPI, **options: Any) -> NewClient:
    """A confidential client with client_credentials and the notes scopes."""
    options.setdefault("grant_types", ["client_credentials"])
    return await keyturn_of(app).clients.add(
        "reports", confidential=True, scopes=["notes:read", "notes:write"], **options
    )


async def grant(http: httpx.AsyncClient, headers: dict[str, str], **form: str) -> httpx.Response:
    return await http.post(
        "/oauth/token", data={"grant_type": "client_credentials", **form}, headers=headers
    )


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"


async def test_a_service_gets_a_token_of_its_own(app: FastAPI, http: httpx.AsyncClient) -> None:
    """HTTP Basic with the secret: an access token with sub = client_id = the
    client, no sid, no refresh token, the scope asked for (RFC 9068 header)."""
    created = await service(app)
    assert created.secret is not None
    response = await grant(http, basic(created.client.id, created.secret), scope="notes:read")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer" and body["scope"] == "notes:read"
    assert jwt.get_unverified_header(body["access_token"])["typ"] == "at+jwt"
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == claims["client_id"] == created.client.id
    assert "sid" not in claims and claims["roles"] == []
    verified = keyturn_of(app).token_verifier.verify(body["access_token"])
    assert verified.for_client and verified.scope == "notes:read"


async def test_client_secret_post_works_too(app: FastAPI, http: httpx.AsyncClient) -> None:
    """client_secret_post (id and secret in the body) authenticates the same way."""
    created = await service(app)
    assert created.secret is not None
    response = await grant(
        http, {}, client_id=created.client.id, client_secret=created.secret, scope="notes:write"
    )
    assert response.status_code == 200, response.text


async def test_the_token_authenticates_as_the_client(app: FastAPI, http: httpx.AsyncClient) -> None:
    """Bearer requests with the token are the client itself: whoami says sub =
    client id, no e-mail, no sign-in."""
    created = await service(app)
    assert created.secret is not None
    token = (await grant(http, basic(created.client.id, created.secret))).json()["access_token"]
    whoami = await http.get("/auth/whoami", headers=bearer(token))
    assert whoami.status_code == 200, whoami.text
    assert whoami.json()["sub"] == created.client.id and whoami.json()["via"] == "token"


async def test_strict_revocation_ends_the_token(app: FastAPI, http: httpx.AsyncClient) -> None:
    """RFC 7009 revocation by the client ends its token at once (strict mode),
    and introspection then says inactive."""
    created = await service(app)
    assert created.secret is not None
    auth = basic(created.client.id, created.secret)
    token = (await grant(http, auth)).json()["access_token"]
    introspected = await http.post("/oauth/introspect", data={"token": token}, headers=auth)
    assert introspected.json()["active"] is True
    assert introspected.json()["sub"] == created.client.id and "sid" not in introspected.json()
    revoked = await http.post("/oauth/revoke", data={"token": token}, headers=auth)
    assert revoked.status_code == 200
    assert (await http.get("/auth/whoami", headers=bearer(token))).status_code == 401
    after = await http.post("/oauth/introspect", data={"token": token}, headers=auth)
    assert after.json() == {"active": False}


async def test_a_removed_client_token_introspects_inactive(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    """Once the client is removed, introspection of its token says inactive."""
    created = await service(app)
    caller = await keyturn_of(app).clients.add("gateway", confidential=True)
    assert created.secret is not None and caller.secret is not None
    token = (await grant(http, basic(created.client.id, created.secret))).json()["access_token"]
    assert await keyturn_of(app).clients.remove(created.client.id)
    answer = await http.post(
        "/oauth/introspect", data={"token": token}, headers=basic(caller.client.id, caller.secret)
    )
    assert answer.json() == {"active": False}


async def test_scope_outside_the_allowlist_is_invalid_scope(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    """A scope the client was not registered with is 400 invalid_scope."""
    created = await service(app)
    assert created.secret is not None
    response = await grant(http, basic(created.client.id, created.secret), scope="admin")
    assert_oauth_error(response, 400, "invalid_scope")


async def test_who_may_use_the_grant(app: FastAPI, http: httpx.AsyncClient) -> None:
    """No client, a wrong secret, or a public client: 401 invalid_client; a
    confidential client without the grant: 400 unauthorized_client."""
    keyturn = keyturn_of(app)
    created = await service(app)
    without = await keyturn.clients.add("web", confidential=True)
    public = await keyturn.clients.add("spa", grant_types=["refresh_token"])
    assert without.secret is not None
    assert_oauth_error(await grant(http, {}), 401, "invalid_client")
    wrong = await grant(http, basic(created.client.id, "not the secret"))
    assert_oauth_error(wrong, 401, "invalid_client")
    assert_oauth_error(await grant(http, {}, client_id=public.client.id), 401, "invalid_client")
    refused = await grant(http, basic(without.client.id, without.secret))
    assert_oauth_error(refused, 400, "unauthorized_client")


async def test_account_endpoints_never_fail_on_a_client_token(
    app: FastAPI, http: httpx.AsyncClient
) -> None:
    """A client's own token on the user-account endpoints gets an answer about an
    account that has nothing (no sign-ins) or a 4xx, never a 5xx; logout revokes
    the token itself."""
    created = await service(app)
    assert created.secret is not None
    token = (await grant(http, basic(created.client.id, created.secret))).json()["access_token"]
    auth = bearer(token)
    sessions = await http.get("/auth/sessions", headers=auth)
    assert sessions.status_code == 200 and sessions.json() == []
    changed = await http.post(
        "/auth/password",
        json={"current_password": "x" * 12, "new_password": "y" * 12},
        headers=auth,
    )
    assert 400 <= changed.status_code < 500, changed.text
    again = await http.post("/auth/reauthenticate", json={"password": "x" * 12}, headers=auth)
    assert 400 <= again.status_code < 500, again.text
    assert (await http.post("/auth/logout", headers=auth)).status_code == 204
    assert (await http.get("/auth/whoami", headers=auth)).status_code == 401
