"""Fixtures for keyturn as a library inside host apps (FastAPI and Starlette).

``host`` builds a host FastAPI app the way the README shows
(``FastAPI(lifespan=kt.lifespan)`` + ``install``), on a memory store with a
cheap hasher and a frozen clock; ``serve`` runs an app's lifespan around an
``httpx.AsyncClient`` on ``https://testserver`` (https, so the ``Secure``
cookies travel back).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp

from keyturn import FrozenClock, Keyturn, Settings
from keyturn.accounts.passwords import PasswordHasher
from keyturn.settings import DEFAULT_SCOPES
from keyturn.stores.memory import MemoryStorage
from keyturn.web import install

BASE = "https://testserver"
PASSWORD = "correct horse battery staple"

Serve = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
Host = Callable[..., tuple[FastAPI, Keyturn]]


@pytest.fixture
def clock() -> FrozenClock:
    """The time every test Keyturn reads; tests move it instead of sleeping."""
    return FrozenClock()


@pytest.fixture
def make_kt(clock: FrozenClock) -> Callable[..., Keyturn]:
    """``make_kt(**settings)``: a Keyturn on a memory store, cheap hasher, frozen clock."""

    def build(**settings: Any) -> Keyturn:
        settings.setdefault("database_url", "sqlite+aiosqlite:///:memory:")
        # The scopes the tests' password grants ask for (keyturn's own --default-scopes).
        settings.setdefault("default_scopes", [*DEFAULT_SCOPES, "notes:read", "notes:write"])
        # The tests get their tokens from the password grant, off by default (#12).
        settings.setdefault("password_grant", True)
        return Keyturn(
            Settings(**settings),
            storage=MemoryStorage(),
            clock=clock,
            hasher=PasswordHasher(memory_kib=1024, time_cost=1, allow_weak_parameters=True),
        )

    return build


@pytest.fixture
def host(make_kt: Callable[..., Keyturn]) -> Host:
    """``host(prefix="", **install_options)``: a host app with keyturn installed."""

    def build(prefix: str = "", **options: Any) -> tuple[FastAPI, Keyturn]:
        kt = make_kt()
        app = FastAPI(lifespan=kt.lifespan)
        install(app, kt, prefix=prefix, **options)
        return app, kt

    return build


@pytest.fixture
def serve() -> Serve:
    """``serve(app)``: run the app's lifespan and yield a client bound to it."""

    @asynccontextmanager
    async def run(app: ASGIApp, *, lifespan: bool = True) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            if lifespan:
                async with app.router.lifespan_context(app):  # type: ignore[attr-defined]
                    yield client
            else:
                yield client

    return run


async def sign_up(
    client: httpx.AsyncClient, email: str = "ada@example.com", *, prefix: str = ""
) -> str:
    """Register ``email`` and sign in with the JSON API; returns the CSRF token
    (the session cookie stays in the client's jar)."""
    created = await client.post(
        f"{prefix}/auth/register", json={"email": email, "password": PASSWORD}
    )
    assert created.status_code == 201, created.text
    login = await client.post(f"{prefix}/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    token: str = login.json()["csrf_token"]
    return token


async def password_grant(
    client: httpx.AsyncClient, email: str = "ada@example.com", *, scope: str = "", prefix: str = ""
) -> str:
    """An access token for ``email`` from ``POST /oauth/token`` (password grant)."""
    form = {"grant_type": "password", "username": email, "password": PASSWORD}
    if scope:
        form["scope"] = scope
    response = await client.post(f"{prefix}/oauth/token", data=form)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token
