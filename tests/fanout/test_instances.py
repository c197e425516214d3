"""Whole keyturn instances on real backends, each with the bus ``--fanout auto``
picks: a change on one reaches another well inside the staleness bound, so only
the push can explain the refusal. The CLI publishes to a running server too.

The bound is set to 5 s and every deadline is 2 s: a refusal within the deadline
cannot come from cache expiry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from keyturn.accounts.passwords import PasswordHasher
from keyturn.cli import main
from keyturn.errors import NotAuthenticated
from keyturn.runtime import Keyturn
from keyturn.settings import Settings
from keyturn.stores.sql.migrate import upgrade

EMAIL = "alice@example.org"
PASSWORD = "correct horse battery"
IP = "192.0.2.7"
BOUND = 5.0
DEADLINE = 2.0


async def eventually(check: Callable[[], bool], *, within: float = DEADLINE) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s")
        await asyncio.sleep(0.01)


async def refused_within(keyturn: Keyturn, secret: str, *, within: float = DEADLINE) -> None:
    """The session is refused by ``keyturn`` before ``within`` seconds pass."""
    deadline = time.monotonic() + within
    while True:
        try:
            await keyturn.sessions.validate(secret)
        except NotAuthenticated:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"still accepted after {within} s")
        await asyncio.sleep(0.01)


@pytest.fixture
async def opened() -> AsyncIterator[list[Keyturn]]:
    keyturns: list[Keyturn] = []
    yield keyturns
    for keyturn in keyturns:
        await keyturn.close()


async def instances(
    settings: Settings, hasher: PasswordHasher, opened: list[Keyturn], count: int = 2
) -> list[Keyturn]:
    for _ in range(count):
        keyturn = Keyturn(settings, hasher=hasher)
        await keyturn.start()
        opened.append(keyturn)
    await eventually(lambda: all(k.fanout.epoch is not None for k in opened), within=5)
    return opened


async def test_postgres_instances_hear_a_sign_out_at_once(
    postgres_database_url: str, fast_hasher: PasswordHasher, opened: list[Keyturn]
) -> None:
    """Two instances on PostgreSQL (LISTEN/NOTIFY): a sign-out on one is refused by
    the other within 2 s, though its cache could have trusted it for 5 s."""
    await upgrade(postgres_database_url)
    settings = Settings(database_url=postgres_database_url, staleness_bound=BOUND)
    a, b = await instances(settings, fast_hasher, opened)
    assert a.fanout.status()["bus"] == "postgres"
    await a.accounts.register(EMAIL, PASSWORD)
    _, issued = await a.auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=None)
    await b.sessions.validate(issued.secret)
    await a.auth.sign_out(issued.secret, ip=IP, user_agent=None)
    await refused_within(b, issued.secret)


async def test_redis_instances_hear_a_disabled_user_at_once(
    postgres_database_url: str, redis_url: str, fast_hasher: PasswordHasher, opened: list[Keyturn]
) -> None:
    """Two instances on PostgreSQL and Redis (pub/sub): a user disabled on one is
    refused by the other within 2 s, session and token alike."""
    await upgrade(postgres_database_url)
    settings = Settings(
        database_url=postgres_database_url, redis_url=redis_url, staleness_bound=BOUND
    )
    a, b = await instances(settings, fast_hasher, opened)
    assert b.fanout.status()["bus"] == "redis"
    await a.accounts.register(EMAIL, PASSWORD)
    _, issued = await a.auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=None)
    await b.sessions.validate(issued.secret)
    await a.auth.disable_user(EMAIL)
    await refused_within(b, issued.secret)


async def test_the_cli_reaches_a_running_sqlite_server(
    tmp_path: Path, fast_hasher: PasswordHasher, opened: list[Keyturn]
) -> None:
    """`keyturn user disable` and `keyturn key rotate`, run next to an instance on
    the same SQLite file, reach it through the polled change table within 2 s."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'keyturn.db'}"
    settings = Settings(database_url=url, staleness_bound=BOUND)
    (server,) = await instances(settings, fast_hasher, opened, count=1)
    assert server.fanout.status()["bus"] == "polling"
    await server.accounts.register(EMAIL, PASSWORD)
    _, issued = await server.auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=None)
    await server.sessions.validate(issued.secret)
    flags = ["--database-url", url, "--staleness-bound", str(BOUND)]

    await asyncio.to_thread(main, ["user", "disable", EMAIL, *flags])
    await refused_within(server, issued.secret)

    before = server.keys.ring.signing_key.kid
    await asyncio.to_thread(main, ["key", "rotate", *flags])
    await eventually(lambda: server.keys.ring.signing_key.kid != before)
