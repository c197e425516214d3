"""``Keyturn.lifespan``: start with the app, sweep in the background, close at shutdown."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from fastapi import FastAPI
from starlette.applications import Starlette

from keyturn import Keyturn, Settings


async def test_lifespan_starts_and_closes_an_instance_it_started(
    make_kt: Callable[..., Keyturn],
) -> None:
    """Not started before; started (keys loaded, sweeper running) inside; closed after."""
    kt = make_kt()
    app = FastAPI(lifespan=kt.lifespan)
    assert not kt.started
    async with app.router.lifespan_context(app):
        assert kt.started
        assert kt.keys.jwks()["keys"]
        assert any(task.get_name() == "keyturn-sweeper" for task in asyncio.all_tasks())
    assert not kt.started
    assert not any(task.get_name() == "keyturn-sweeper" for task in asyncio.all_tasks())


async def test_lifespan_leaves_a_caller_started_instance_running(
    make_kt: Callable[..., Keyturn],
) -> None:
    """An instance started by the caller (shared by two apps) stays open after one app stops."""
    kt = make_kt()
    await kt.start()
    try:
        first, second = FastAPI(lifespan=kt.lifespan), Starlette(lifespan=kt.lifespan)
        async with first.router.lifespan_context(first), second.router.lifespan_context(second):
            assert kt.started
        assert kt.started
    finally:
        await kt.close()
    assert not kt.started


async def test_lifespan_on_a_real_sqlite_file(tmp_path) -> None:
    """With the default storage, the lifespan creates and migrates the SQLite file."""
    database = tmp_path / "host.db"
    kt = Keyturn(Settings(database_url=f"sqlite+aiosqlite:///{database}"))
    async with kt.lifespan(None):
        user = await kt.accounts.register("ada@example.com", "correct horse battery staple")
        assert (await kt.accounts.get(user.id)) is not None
    assert database.exists()
    assert not kt.started


async def test_lifespan_closes_even_when_the_app_fails(make_kt: Callable[..., Keyturn]) -> None:
    """An exception while serving still stops the sweeper and closes the instance."""
    kt = make_kt()
    with pytest.raises(RuntimeError, match="boom"):
        async with kt.lifespan(None):
            raise RuntimeError("boom")
    assert not kt.started
