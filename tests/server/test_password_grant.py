"""The password grant is off by default (#12, RFC 9700 section 2.4), over HTTP.

``--password-grant`` turns it on, and then only for clients registered with the
``password`` grant (wave-1 clients have it) or, with no ``client_id``, keyturn's
own first-party use. Off, it is RFC 6749 ``unsupported_grant_type``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI
from tests.server.token_support import (
    BASE,
    EMAIL,
    PASSWORD,
    MakeClient,
    build_app,
    clock,
    keyturn_of,
    password_grant,
)

from keyturn.stores.records import Client

__all__ = ["build_app", "clock"]


def _app_of(client: httpx.AsyncClient) -> FastAPI:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    app: FastAPI = transport.app  # type: ignore[assignment]
    return app


@pytest.fixture
def serve(
    make_client: MakeClient, build_app: Callable[..., FastAPI], sqlite_url: str
) -> Callable[..., AsyncIterator[httpx.AsyncClient]]:
    """``serve(password_grant=...)``: a client on a SQLite app with one account."""

    async def start(*, password_grant: bool) -> AsyncIterator[httpx.AsyncClient]:
        app = build_app(sqlite_url, password_grant=password_grant)
        async with make_client(app=app, base_url=BASE) as opened:
            registered = await opened.post(
                "/auth/register", json={"email": EMAIL, "password": PASSWORD}
            )
            assert registered.status_code == 201
            yield opened

    return start


@pytest.fixture
async def off(
    serve: Callable[..., AsyncIterator[httpx.AsyncClient]],
) -> AsyncIterator[httpx.AsyncClient]:
    """A server with the default: no --password-grant."""
    async for opened in serve(password_grant=False):
        yield opened


@pytest.fixture
async def on(
    serve: Callable[..., AsyncIterator[httpx.AsyncClient]],
) -> AsyncIterator[httpx.AsyncClient]:
    """A server started with --password-grant."""
    async for opened in serve(password_grant=True):
        yield opened


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.headers["cache-control"] == "no-store"


async def test_off_by_default_is_unsupported_grant_type(off: httpx.AsyncClient) -> None:
    """Without --password-grant the right password gets 400 unsupported_grant_type,
    with or without a client registered for the grant, and no sign-in happens."""
    keyturn = keyturn_of(_app_of(off))
    legacy = await keyturn.clients.add("legacy", grant_types=["password", "refresh_token"])
    for extra in ({}, {"client_id": legacy.client.id}):
        response = await password_grant(off, **extra)
        assert_oauth_error(response, 400, "unsupported_grant_type")
    user = await keyturn.storage.users.get_by_email(EMAIL)
    assert user is not None
    assert await keyturn.storage.refresh.list_families(user.id) == []


async def test_off_does_not_count_as_a_failed_sign_in(off: httpx.AsyncClient) -> None:
    """Refused before the password is read: wrong passwords through the disabled
    grant do not lock the account out of /auth/login."""
    for _ in range(12):
        response = await password_grant(off, password="wrong password!")
        assert_oauth_error(response, 400, "unsupported_grant_type")
    login = await off.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert login.status_code == 200


@pytest.mark.parametrize("enabled", [False, True])
async def test_metadata_lists_it_only_when_turned_on(
    serve: Callable[..., AsyncIterator[httpx.AsyncClient]], enabled: bool
) -> None:
    """grant_types_supported lists password only with --password-grant."""
    async for opened in serve(password_grant=enabled):
        metadata = (await opened.get("/.well-known/oauth-authorization-server")).json()
        assert ("password" in metadata["grant_types_supported"]) is enabled


async def test_on_first_party_use_without_client_id_works(on: httpx.AsyncClient) -> None:
    """With --password-grant and no client_id (keyturn's own use) the grant answers."""
    response = await password_grant(on)
    assert response.status_code == 200, response.text
    assert {"access_token", "refresh_token"} <= set(response.json())


async def test_on_only_for_clients_registered_with_it(on: httpx.AsyncClient) -> None:
    """With --password-grant, a client registered without the password grant (the
    default grants) gets 400 unauthorized_client; one registered with it, public or
    confidential, gets tokens carrying its client_id."""
    keyturn = keyturn_of(_app_of(on))
    modern = await keyturn.clients.add("spa", redirect_uris=["https://spa.example/cb"])
    refused = await password_grant(on, client_id=modern.client.id)
    assert_oauth_error(refused, 400, "unauthorized_client")
    allowed = await keyturn.clients.add("cli", grant_types=["password", "refresh_token"])
    granted = await password_grant(on, client_id=allowed.client.id)
    assert granted.status_code == 200, granted.text
    claims = keyturn.token_verifier.verify(granted.json()["access_token"])
    assert claims.client_id == allowed.client.id


async def test_on_a_wave_one_client_keeps_the_password_grant(on: httpx.AsyncClient) -> None:
    """A client stored before clients had grant types (as migration 0009 leaves it)
    keeps working with the password grant when it is on."""
    keyturn = keyturn_of(_app_of(on))
    await keyturn.storage.clients.add(Client("wave-1-app", "old app", False, 1.0))
    response = await password_grant(on, client_id="wave-1-app")
    assert response.status_code == 200, response.text
