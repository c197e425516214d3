"""Fixtures for black-box tests of the HTTP server, run in-process.

``make_client`` is the entry point later server tests reuse::

    async def test_something(make_client):
        async with make_client() as client:
            response = await client.get("/healthz")

The app's lifespan runs around the client, so ``Keyturn.start()``/``close()``
happen exactly as under uvicorn.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI

from keyturn.accounts.passwords import PasswordHasher
from keyturn.mail.mailer import MemoryMailer
from keyturn.runtime import Keyturn
from keyturn.settings import Settings
from keyturn.stores.memory import MemoryStorage
from keyturn.web.app import create_app

MakeClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def server_settings() -> Settings:
    """Settings for in-process servers: in-memory database, nothing on disk."""
    return Settings(database_url="sqlite+aiosqlite:///:memory:")


@pytest.fixture
def make_keyturn(server_settings: Settings) -> Callable[..., Keyturn]:
    """Build a Keyturn on a memory store with a deliberately cheap hasher."""

    def build(settings: Settings | None = None, **overrides: object) -> Keyturn:
        options: dict[str, object] = {
            "storage": MemoryStorage(),
            "hasher": PasswordHasher(memory_kib=1024, time_cost=1, allow_weak_parameters=True),
            "mailer": MemoryMailer(),  # mail (#14): nothing written to ./keyturn-outbox
        }
        options.update(overrides)
        return Keyturn(settings or server_settings, **options)  # type: ignore[arg-type]

    return build


@pytest.fixture
def make_client(server_settings: Settings, make_keyturn: Callable[..., Keyturn]) -> MakeClient:
    """``make_client(settings=None, keyturn=None, *, app=None, base_url=...)``:
    an async context manager running the app's lifespan and yielding an
    ``httpx.AsyncClient`` bound to it. Pass ``app`` to use a prepared app
    (e.g. with test-only routes); otherwise one is built by ``create_app``."""

    @asynccontextmanager
    async def make(
        settings: Settings | None = None,
        keyturn: Keyturn | None = None,
        *,
        app: FastAPI | None = None,
        base_url: str = "http://testserver",
    ) -> AsyncIterator[httpx.AsyncClient]:
        if app is None:
            settings = settings or server_settings
            app = create_app(settings, keyturn=keyturn or make_keyturn(settings))
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url=base_url) as client,
        ):
            yield client

    return make


@pytest.fixture
def make_app(
    server_settings: Settings, make_keyturn: Callable[..., Keyturn]
) -> Callable[..., FastAPI]:
    """Build an app (memory store, cheap hasher) to add test-only routes to."""

    def build(settings: Settings | None = None, keyturn: Keyturn | None = None) -> FastAPI:
        settings = settings or server_settings
        return create_app(settings, keyturn=keyturn or make_keyturn(settings))

    return build


# --- live servers: ``keyturn serve`` as a real process (tests/live.py) ---------------

from collections.abc import Iterator  # noqa: E402 - imports kept with the block using them

from tests.live import LiveServers  # noqa: E402


@pytest.fixture
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServers]:
    """``live_server(*serve_args, database_url=None, env=None, port_via="flag", ...)``:
    start ``keyturn serve`` as a subprocess on a free port and a fresh SQLite file,
    return the started :class:`~tests.live.LiveServer` once ``/healthz`` answers.
    Every server started through it is stopped (SIGTERM, then SIGKILL) at teardown."""
    servers = LiveServers(tmp_path_factory.mktemp("live"))
    try:
        yield servers
    finally:
        servers.stop_all()
