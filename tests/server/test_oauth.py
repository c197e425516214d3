"""The OAuth endpoints over HTTP: ``/oauth/token``, ``/oauth/revoke``, ``/oauth/introspect``.

Happy paths and the refresh race run on SQLite and PostgreSQL (``app``); the long
tail of refusals on SQLite (``sqlite_app``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.server.token_support import (
    BASE,
    EMAIL,
    PASSWORD,
    MakeClient,
    app,
    basic,
    bearer,
    browser,
    build_app,
    client,
    clock,
    keyturn_of,
    login,
    password_grant,
    refresh,
    tokens,
    whoami_status,
)

from keyturn.clock import FrozenClock

__all__ = ["app", "browser", "build_app", "client", "clock"]


@pytest.fixture
async def lite(
    make_client: MakeClient, build_app: Callable[..., FastAPI], sqlite_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    """A client on a SQLite app with one account, for the long tail of refusals."""
    async with make_client(app=build_app(sqlite_url), base_url=BASE) as opened:
        response = await opened.post("/auth/register", json={"email": EMAIL, "password": PASSWORD})
        assert response.status_code == 201
        yield opened


def app_of(client: httpx.AsyncClient) -> FastAPI:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    app: FastAPI = transport.app  # type: ignore[assignment]
    return app


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error and isinstance(body["error_description"], str)
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


# --- password grant -------------------------------------------------------------------------


async def test_password_grant_returns_a_working_token_pair(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """The password grant answers the RFC 6749 body, no-store, and the token works."""
    response = await password_grant(client, scope="read write")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == keyturn_of(app).settings.access_token_ttl
    assert body["scope"] == "read write"
    who = await client.get("/auth/whoami", headers=bearer(body["access_token"]))
    assert who.status_code == 200 and who.json()["email"] == EMAIL
    assert 'keyturn_logins_total{outcome="success"} 1.0' in app.state.metrics.render().decode()


async def test_unknown_account_and_wrong_password_are_identical(lite: httpx.AsyncClient) -> None:
    """Same status, body and header names: 400 invalid_grant either way."""
    unknown = await password_grant(lite, "nobody@example.com")
    wrong = await password_grant(lite, password="wrong password!")
    assert_oauth_error(unknown, 400, "invalid_grant")
    assert unknown.content == wrong.content
    ignored = {"date", "content-length"}
    assert set(unknown.headers) - ignored == set(wrong.headers) - ignored
    rendered = app_of(lite).state.metrics.render().decode()
    assert 'keyturn_logins_total{outcome="failure"} 2.0' in rendered


async def test_password_grant_shares_the_login_throttle(lite: httpx.AsyncClient) -> None:
    """Ten failed grants throttle the account: 429 with Retry-After, even with the
    right password, on the grant and on /auth/login alike."""
    for _ in range(10):
        assert (await password_grant(lite, password="wrong password!")).status_code == 400
    response = await password_grant(lite)
    assert_oauth_error(response, 429, "too_many_attempts")
    assert int(response.headers["retry-after"]) > 0
    login_response = await lite.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert login_response.status_code == 429
    rendered = app_of(lite).state.metrics.render().decode()
    assert 'keyturn_logins_total{outcome="throttled"} 2.0' in rendered


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"grant_type": ""},
        {"grant_type": "password", "username": EMAIL},
        {"grant_type": "password", "password": PASSWORD},
        {"grant_type": "refresh_token"},
    ],
)
async def test_missing_parameters_are_invalid_request(
    lite: httpx.AsyncClient, data: dict[str, str]
) -> None:
    """A missing (or empty) required parameter is 400 invalid_request."""
    assert_oauth_error(await lite.post("/oauth/token", data=data), 400, "invalid_request")


async def test_repeated_parameters_are_invalid_request(lite: httpx.AsyncClient) -> None:
    """A parameter sent twice is 400 invalid_request (RFC 6749 section 3.2)."""
    body = f"grant_type=password&username={EMAIL}&password=x&password=y"
    response = await lite.post(
        "/oauth/token",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_oauth_error(response, 400, "invalid_request")


async def test_unknown_parameters_are_ignored_even_repeated(lite: httpx.AsyncClient) -> None:
    """An unrecognized parameter, even sent twice, is ignored (RFC 6749 section 3.1)."""
    body = "grant_type=refresh_token&extra=1&extra=2&refresh_token=not-a-token"
    response = await lite.post(
        "/oauth/token",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_oauth_error(response, 400, "invalid_grant")


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"grant_type": "password"}', "application/json"),
        (b"grant_type=password", "text/plain"),
        (b"grant_type=password", None),
        (b"grant_type=\xff\xfe", "application/x-www-form-urlencoded"),
        (b"grant_type=%ff%fe", "application/x-www-form-urlencoded"),
        (b"&".join(b"a%d=1" % i for i in range(100)), "application/x-www-form-urlencoded"),
    ],
)
async def test_malformed_bodies_are_invalid_request(
    lite: httpx.AsyncClient, content: bytes, content_type: str | None
) -> None:
    """JSON, untyped, invalid UTF-8 and field floods are 400 invalid_request, never 5xx."""
    headers = {"Content-Type": content_type} if content_type else {}
    response = await lite.post("/oauth/token", content=content, headers=headers)
    assert_oauth_error(response, 400, "invalid_request")


@pytest.mark.parametrize("grant_type", ["implicit", "device_code", "x" * 300])
async def test_other_grant_types_are_unsupported(lite: httpx.AsyncClient, grant_type: str) -> None:
    """Grant types keyturn does not implement: 400 unsupported_grant_type."""
    response = await lite.post("/oauth/token", data={"grant_type": grant_type})
    assert_oauth_error(response, 400, "unsupported_grant_type")


@pytest.mark.parametrize(
    "auth",
    [
        {"client_id": "no-such-client"},
        {"headers": basic("no-such-client", "secret")},
        {"headers": {"Authorization": "Basic !!!notbase64"}},
        {"headers": {"Authorization": "Basic " + "QQ=="}},
    ],
)
async def test_bad_client_authentication_is_401_invalid_client(
    lite: httpx.AsyncClient, auth: dict[str, Any]
) -> None:
    """Unknown clients and malformed Basic credentials: 401 invalid_client with a
    Basic challenge."""
    response = await password_grant(lite, **auth)
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")


async def test_confidential_client_authenticates_with_basic(lite: httpx.AsyncClient) -> None:
    """A confidential client's password grant and refresh need its Basic secret;
    the family is bound to it."""
    new = await keyturn_of(app_of(lite)).clients.add(
        "web", grant_types=["password", "refresh_token"], confidential=True
    )
    assert new.secret is not None
    good = basic(new.client.id, new.secret)
    response = await password_grant(lite, headers=good)
    assert response.status_code == 200, response.text
    pair = response.json()
    wrong = await password_grant(lite, headers=basic(new.client.id, "not the secret"))
    assert_oauth_error(wrong, 401, "invalid_client")
    anonymous = await refresh(lite, pair["refresh_token"])
    assert_oauth_error(anonymous, 400, "invalid_grant")
    data = {"grant_type": "refresh_token", "refresh_token": pair["refresh_token"]}
    refreshed = await lite.post("/oauth/token", data=data, headers=good)
    assert refreshed.status_code == 200, refreshed.text


async def test_public_client_names_itself_with_client_id(lite: httpx.AsyncClient) -> None:
    """A public client sends client_id (no secret); its token carries the client_id."""
    new = await keyturn_of(app_of(lite)).clients.add(
        "spa", grant_types=["password", "refresh_token"]
    )
    pair = await tokens(lite, client_id=new.client.id)
    claims = keyturn_of(app_of(lite)).token_verifier.verify(pair["access_token"])
    assert claims.client_id == new.client.id


async def test_password_grant_refuses_scopes_outside_the_allowlist(
    lite: httpx.AsyncClient,
) -> None:
    """A scope the client was not registered with, or (without a client) one outside
    --default-scopes, is 400 invalid_scope and not a failed sign-in; allowed
    scopes are granted (#10 item 10c)."""
    keyturn = keyturn_of(app_of(lite))
    spa = await keyturn.clients.add(
        "spa", grant_types=["password", "refresh_token"], scopes=["notes:read"]
    )
    allowed = await tokens(lite, client_id=spa.client.id, scope="openid notes:read")
    assert allowed["scope"] == "openid notes:read"
    for extra in ({"client_id": spa.client.id, "scope": "notes:write"}, {"scope": "admin"}):
        assert_oauth_error(await password_grant(lite, **extra), 400, "invalid_scope")
    rendered = app_of(lite).state.metrics.render().decode()
    assert 'keyturn_logins_total{outcome="failure"} 0.0' in rendered


async def test_oauth_endpoints_ignore_the_session_cookie_and_its_csrf(
    lite: httpx.AsyncClient,
) -> None:
    """A browser holding a session may call /oauth/token without a CSRF token."""
    await login(lite)
    assert (await password_grant(lite)).status_code == 200


# --- refresh grant -----------------------------------------------------------------------------


async def test_refresh_rotates_and_a_late_replay_kills_the_family(
    client: httpx.AsyncClient, clock: FrozenClock, app: FastAPI
) -> None:
    """R1 -> R2; R1 again after the grace window is invalid_grant and R2 and every
    access token of the family die with it."""
    first = await tokens(client)
    response = await refresh(client, first["refresh_token"])
    assert response.status_code == 200, response.text
    second = response.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    clock.advance(keyturn_of(app).settings.refresh_grace + 1)
    assert_oauth_error(await refresh(client, first["refresh_token"]), 400, "invalid_grant")
    assert_oauth_error(await refresh(client, second["refresh_token"]), 400, "invalid_grant")
    assert await whoami_status(client, first["access_token"]) == 401
    assert await whoami_status(client, second["access_token"]) == 401


async def test_parallel_refreshes_share_one_successor(
    client: httpx.AsyncClient, clock: FrozenClock, app: FastAPI
) -> None:
    """Four parallel refreshes with one token all get 200 and the same new pair;
    the family survives; a replay after the grace window kills it."""
    first = await tokens(client)
    responses = await asyncio.gather(*(refresh(client, first["refresh_token"]) for _ in range(4)))
    assert [r.status_code for r in responses] == [200] * 4, [r.text for r in responses]
    pairs = {(r.json()["access_token"], r.json()["refresh_token"]) for r in responses}
    assert len(pairs) == 1
    access, successor = pairs.pop()
    assert await whoami_status(client, access) == 200
    clock.advance(keyturn_of(app).settings.refresh_grace + 1)
    assert_oauth_error(await refresh(client, first["refresh_token"]), 400, "invalid_grant")
    assert_oauth_error(await refresh(client, successor), 400, "invalid_grant")
    assert await whoami_status(client, access) == 401


@pytest.mark.parametrize("token", ["garbage", "ktr_" + "A" * 43, "x" * 5000])
async def test_unknown_refresh_tokens_are_invalid_grant(
    lite: httpx.AsyncClient, token: str
) -> None:
    """Unknown, forged and oversized refresh tokens are 400 invalid_grant."""
    assert_oauth_error(await refresh(lite, token), 400, "invalid_grant")


async def test_access_and_refresh_tokens_are_not_interchangeable(lite: httpx.AsyncClient) -> None:
    """An access token is no refresh token, and a refresh token is no bearer token."""
    pair = await tokens(lite)
    assert_oauth_error(await refresh(lite, pair["access_token"]), 400, "invalid_grant")
    assert await whoami_status(lite, pair["refresh_token"]) == 401


# --- revocation ----------------------------------------------------------------------------------


async def test_revoking_a_refresh_token_ends_its_family(client: httpx.AsyncClient) -> None:
    """RFC 7009: revoking R is 200 with an empty body; R is then invalid_grant and
    the family's access token is refused."""
    pair = await tokens(client)
    response = await client.post(
        "/oauth/revoke", data={"token": pair["refresh_token"], "token_type_hint": "access_token"}
    )
    assert response.status_code == 200 and response.content == b""
    assert_oauth_error(await refresh(client, pair["refresh_token"]), 400, "invalid_grant")
    assert await whoami_status(client, pair["access_token"]) == 401


async def test_revoking_an_access_token_refuses_it(lite: httpx.AsyncClient) -> None:
    """A revoked access token is refused at once; its refresh token still works."""
    pair = await tokens(lite)
    response = await lite.post("/oauth/revoke", data={"token": pair["access_token"]})
    assert response.status_code == 200
    assert await whoami_status(lite, pair["access_token"]) == 401
    assert (await refresh(lite, pair["refresh_token"])).status_code == 200


@pytest.mark.parametrize("token", ["garbage", "ktr_" + "A" * 43, "a.b.c", "x" * 10_000])
async def test_revoking_unknown_tokens_is_200(lite: httpx.AsyncClient, token: str) -> None:
    """Unknown and garbage tokens get the same 200 as a real one."""
    response = await lite.post(
        "/oauth/revoke", data={"token": token, "token_type_hint": "bogus_hint"}
    )
    assert response.status_code == 200 and response.content == b""


async def test_revoke_without_a_token_is_invalid_request(lite: httpx.AsyncClient) -> None:
    """POST /oauth/revoke without ``token`` is 400 invalid_request."""
    assert_oauth_error(await lite.post("/oauth/revoke", data={}), 400, "invalid_request")


async def refresh_as(
    client: httpx.AsyncClient, refresh_token: str, headers: dict[str, str]
) -> httpx.Response:
    """``grant_type=refresh_token`` with the client authentication in ``headers``."""
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return await client.post("/oauth/token", data=data, headers=headers)


async def revoke(client: httpx.AsyncClient, token: str, **extra: Any) -> httpx.Response:
    """``POST /oauth/revoke`` for ``token``; ``headers`` go on the request."""
    headers = extra.pop("headers", None)
    return await client.post("/oauth/revoke", data={"token": token, **extra}, headers=headers)


async def test_another_client_cannot_revoke_a_clients_tokens(client: httpx.AsyncClient) -> None:
    """Client B, with its own credentials or as a public client, revoking client A's
    refresh or access token gets 200 and revokes nothing (RFC 7009 section 2.1;
    #10 item 4)."""
    keyturn = keyturn_of(app_of(client))
    owner = await keyturn.clients.add(
        "gateway", grant_types=["password", "refresh_token"], confidential=True
    )
    other = await keyturn.clients.add(
        "other", grant_types=["password", "refresh_token"], confidential=True
    )
    spa = await keyturn.clients.add("spa", grant_types=["password", "refresh_token"])
    assert owner.secret is not None and other.secret is not None
    as_owner, as_other = basic(owner.client.id, owner.secret), basic(other.client.id, other.secret)
    pair = await tokens(client, headers=as_owner)
    for token in (pair["refresh_token"], pair["access_token"]):
        answer = await revoke(client, token, headers=as_other)
        assert answer.status_code == 200 and answer.content == b""
        assert (await revoke(client, token, client_id=spa.client.id)).status_code == 200
    assert await whoami_status(client, pair["access_token"]) == 200
    refreshed = await refresh_as(client, pair["refresh_token"], as_owner)
    assert refreshed.status_code == 200, refreshed.text
    first_party = await tokens(client)  # issued to no client: no client may revoke it
    for token in (first_party["refresh_token"], first_party["access_token"]):
        assert (await revoke(client, token, headers=as_other)).status_code == 200
    assert await whoami_status(client, first_party["access_token"]) == 200
    assert (await refresh(client, first_party["refresh_token"])).status_code == 200


async def test_a_confidential_clients_token_needs_its_credentials_to_be_revoked(
    lite: httpx.AsyncClient,
) -> None:
    """A confidential client's refresh or access token presented without client
    authentication is 401 invalid_client (RFC 7009 section 2.2.1, "no client
    authentication included") and stays valid (#10 item 4)."""
    owner = await keyturn_of(app_of(lite)).clients.add(
        "gateway", grant_types=["password", "refresh_token"], confidential=True
    )
    assert owner.secret is not None
    as_owner = basic(owner.client.id, owner.secret)
    pair = await tokens(lite, headers=as_owner)
    for token in (pair["refresh_token"], pair["access_token"]):
        answer = await revoke(lite, token)
        assert_oauth_error(answer, 401, "invalid_client")
        assert answer.headers["www-authenticate"].startswith("Basic")
        named = await revoke(lite, token, client_id=owner.client.id)  # a name is no proof
        assert_oauth_error(named, 401, "invalid_client")
    assert await whoami_status(lite, pair["access_token"]) == 200
    assert (await refresh_as(lite, pair["refresh_token"], as_owner)).status_code == 200


async def test_a_client_revokes_its_own_tokens(lite: httpx.AsyncClient) -> None:
    """The owner revokes: a confidential client with its credentials, a public
    client naming itself or, like the refresh grant, naming no client (#10 item 4)."""
    keyturn = keyturn_of(app_of(lite))
    owner = await keyturn.clients.add(
        "gateway", grant_types=["password", "refresh_token"], confidential=True
    )
    spa = await keyturn.clients.add("spa", grant_types=["password", "refresh_token"])
    assert owner.secret is not None
    as_owner = basic(owner.client.id, owner.secret)
    confidential = await tokens(lite, headers=as_owner)
    assert (await revoke(lite, confidential["access_token"], headers=as_owner)).status_code == 200
    assert await whoami_status(lite, confidential["access_token"]) == 401
    assert (await revoke(lite, confidential["refresh_token"], headers=as_owner)).status_code == 200
    gone = await refresh_as(lite, confidential["refresh_token"], as_owner)
    assert_oauth_error(gone, 400, "invalid_grant")
    for named in ({"client_id": spa.client.id}, {}):
        public = await tokens(lite, client_id=spa.client.id)
        assert (await revoke(lite, public["refresh_token"], **named)).status_code == 200
        assert_oauth_error(await refresh(lite, public["refresh_token"]), 400, "invalid_grant")
        assert await whoami_status(lite, public["access_token"]) == 401


# --- introspection ------------------------------------------------------------------------------


async def test_introspection_for_a_confidential_client(client: httpx.AsyncClient) -> None:
    """A confidential client sees an active token's claims, and exactly
    {"active": false} once it is revoked or for garbage."""
    new = await keyturn_of(app_of(client)).clients.add(
        "api", grant_types=["password", "refresh_token"], confidential=True
    )
    assert new.secret is not None
    auth = basic(new.client.id, new.secret)
    pair = await tokens(client, scope="read")
    response = await client.post(
        "/oauth/introspect", data={"token": pair["access_token"]}, headers=auth
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["active"] is True and body["iss"] == BASE and body["scope"] == "read"
    assert {"sub", "exp", "iat", "aud", "jti", "token_type"} <= set(body)
    await client.post("/oauth/revoke", data={"token": pair["access_token"]})
    for token in (pair["access_token"], "garbage"):
        response = await client.post("/oauth/introspect", data={"token": token}, headers=auth)
        assert response.status_code == 200 and response.json() == {"active": False}


@pytest.mark.parametrize("who", ["nobody", "public", "wrong-secret", "body-secret"])
async def test_introspection_requires_a_confidential_client(
    lite: httpx.AsyncClient, who: str
) -> None:
    """Anonymous, public-client, wrong-secret and non-Basic callers get 401 invalid_client."""
    clients = keyturn_of(app_of(lite)).clients
    confidential = await clients.add(
        "api", grant_types=["password", "refresh_token"], confidential=True
    )
    public = await clients.add("spa", grant_types=["password", "refresh_token"])
    data = {"token": "anything"}
    headers: dict[str, str] = {}
    if who == "public":
        data["client_id"] = public.client.id
    elif who == "wrong-secret":
        headers = basic(confidential.client.id, "wrong")
    elif who == "body-secret":
        assert confidential.secret is not None
        data.update(client_id=confidential.client.id, client_secret=confidential.secret)
    response = await lite.post("/oauth/introspect", data=data, headers=headers)
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")
