"""Fixtures and helpers shared by the token API tests (``test_oauth``, ``test_bearer_api``,
``test_wellknown``). Test modules import the fixtures they use by name.

Every app runs on a real database (a migrated SQLite file; the ``pg_*`` fixtures add
PostgreSQL; the ``database_url`` and ``sqlite_url`` fixtures are the shared ones of
tests/conftest.py) with a cheap hasher and an optional frozen clock, behind
``https://testserver`` (the session cookie is ``Secure``).
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import httpx
import pytest
from fastapi import FastAPI
from tests.server.http_support import BASE

from keyturn.clock import FrozenClock
from keyturn.runtime import Keyturn
from keyturn.settings import DEFAULT_SCOPES, Settings
from keyturn.web.app import create_app

MakeClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
Browser = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]

EMAIL = "a@example.com"
OTHER_EMAIL = "b@example.com"
PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "another long passphrase here"


@pytest.fixture
def clock() -> FrozenClock:
    """The app's clock: moves only when a test says so."""
    return FrozenClock()


def token_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a token-issuing app at https://testserver."""
    options: dict[str, Any] = {
        "database_url": database_url,
        "issuer": BASE,
        "key_encryption_key": "A" * 43,
        "audit_log_file": tmp_path / "audit.jsonl",
        # The scopes the tests' first-party password grants ask for.
        "default_scopes": [*DEFAULT_SCOPES, "read", "write"],
        # The tests get their tokens from the password grant, off by default (#12).
        "password_grant": True,
    }
    options.update(overrides)
    return Settings(**options)


@pytest.fixture
def build_app(
    make_keyturn: Callable[..., Keyturn], tmp_path: Path, clock: FrozenClock
) -> Callable[..., FastAPI]:
    """``build_app(database_url, **settings)``: an app on that database, frozen clock."""

    def build(database_url: str, **overrides: Any) -> FastAPI:
        settings = token_settings(database_url, tmp_path, **overrides)
        return create_app(settings, keyturn=make_keyturn(settings, storage=None, clock=clock))

    return build


@pytest.fixture
def app(build_app: Callable[..., FastAPI], database_url: str) -> FastAPI:
    """The app on the parametrized database (SQLite, then PostgreSQL)."""
    return build_app(database_url)


@pytest.fixture
def browser(make_client: MakeClient, app: FastAPI) -> Browser:
    """``async with browser() as client``: one more client (own cookie jar) on ``app``."""

    def open_browser() -> AbstractAsyncContextManager[httpx.AsyncClient]:
        return make_client(app=app, base_url=BASE)

    return open_browser


@pytest.fixture
async def client(browser: Browser) -> AsyncIterator[httpx.AsyncClient]:
    """A started app with two registered accounts."""
    async with browser() as opened:
        for email in (EMAIL, OTHER_EMAIL):
            response = await opened.post(
                "/auth/register", json={"email": email, "password": PASSWORD}
            )
            assert response.status_code == 201, response.text
        yield opened


def keyturn_of(app: FastAPI) -> Keyturn:
    """The app's Keyturn."""
    keyturn: Keyturn = app.state.keyturn
    return keyturn


async def password_grant(
    client: httpx.AsyncClient,
    username: str = EMAIL,
    password: str = PASSWORD,
    **extra: Any,
) -> httpx.Response:
    """``POST /oauth/token`` with ``grant_type=password``."""
    headers = extra.pop("headers", None)
    data = {"grant_type": "password", "username": username, "password": password, **extra}
    return await client.post("/oauth/token", data=data, headers=headers)


async def tokens(client: httpx.AsyncClient, username: str = EMAIL, **extra: Any) -> dict[str, Any]:
    """A successful password grant's body."""
    response = await password_grant(client, username, **extra)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def refresh(client: httpx.AsyncClient, refresh_token: str, **extra: Any) -> httpx.Response:
    """``POST /oauth/token`` with ``grant_type=refresh_token``."""
    data = {"grant_type": "refresh_token", "refresh_token": refresh_token, **extra}
    return await client.post("/oauth/token", data=data)


def bearer(token: str) -> dict[str, str]:
    """An ``Authorization: Bearer`` header."""
    return {"Authorization": f"Bearer {token}"}


async def whoami_status(client: httpx.AsyncClient, token: str) -> int:
    """The status of ``GET /auth/whoami`` with ``token``."""
    return (await client.get("/auth/whoami", headers=bearer(token))).status_code


async def login(client: httpx.AsyncClient, email: str = EMAIL) -> str:
    """Sign in with the cookie; return the CSRF token."""
    response = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    csrf: str = response.json()["csrf_token"]
    return csrf


def basic(client_id: str, secret: str) -> dict[str, str]:
    """An ``Authorization: Basic`` header (RFC 6749 2.3.1 encoding)."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
