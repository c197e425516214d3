"""One ``storage`` fixture parametrized over every implementation.

Every contract test runs against the memory reference, a migrated SQLite file,
a migrated database on a real PostgreSQL server (marked ``postgres``) and the
SQL + Redis bundle on a real Redis server (marked ``redis``: SQLite for users,
keys, refresh and clients; Redis for sessions, revocations and throttling).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from limits.aio.storage import MemoryStorage as LimitsMemoryStorage
from limits.aio.storage import Storage as LimitsStorage

from keyturn.clock import FrozenClock
from keyturn.settings import Settings
from keyturn.stores.factory import open_storage
from keyturn.stores.memory import MemoryStorage
from keyturn.stores.protocols import Storage, UserStore
from keyturn.stores.sql import SqlStorage
from keyturn.stores.sql.throttle import SqlThrottleStorage
from keyturn.stores.wave2 import Wave2Stores, wave2_stores  # wave 2


@pytest.fixture(
    params=[
        pytest.param("memory"),
        pytest.param("sqlite"),
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """A fresh, empty storage of each kind."""
    if request.param == "memory":
        opened: Storage = MemoryStorage()
    elif request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'keyturn.db'}"
        opened = await open_storage(Settings(database_url=url))
    elif request.param == "redis":
        url = f"sqlite+aiosqlite:///{tmp_path / 'keyturn.db'}"
        redis_url = request.getfixturevalue("redis_url")  # skips or fails without Redis
        opened = await open_storage(Settings(database_url=url, redis_url=redis_url))
        from keyturn.stores.redis import SqlRedisStorage

        assert isinstance(opened, SqlRedisStorage)
    else:
        url = request.getfixturevalue("postgres_database_url")
        opened = await open_storage(Settings(database_url=url), migrate=True)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def users(storage: Storage) -> UserStore:
    """The user store of each storage kind."""
    return storage.users


# --- sign-in throttle storages (limits' async Storage interface) ------------------------


@pytest.fixture
def throttle_clock(monkeypatch: pytest.MonkeyPatch) -> FrozenClock:
    """A frozen clock that every throttle storage counts time by.

    limits' memory storage reads ``time.time`` directly, so it is patched to
    this clock for the test; the SQL storage takes the clock as an argument.
    """
    clock = FrozenClock(time.time())
    monkeypatch.setattr(time, "time", clock.now)
    return clock


@pytest.fixture(
    params=[
        pytest.param("memory"),
        pytest.param("sqlite"),
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
async def throttle_storage(
    request: pytest.FixtureRequest, tmp_path: Path, throttle_clock: FrozenClock
) -> AsyncIterator[LimitsStorage]:
    """A fresh, empty throttle storage of each kind, on ``throttle_clock``."""
    if request.param == "memory":
        yield LimitsMemoryStorage()
        return
    if request.param == "redis":
        redis_url = request.getfixturevalue("redis_url")  # skips or fails without Redis
        from keyturn.stores.redis import RedisConnection, RedisThrottleStorage

        connection = RedisConnection(redis_url)
        try:
            yield RedisThrottleStorage(connection, clock=throttle_clock)
        finally:
            await connection.close()
        return
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'keyturn.db'}"
        opened = await open_storage(Settings(database_url=url))
    else:
        url = request.getfixturevalue("postgres_database_url")
        opened = await open_storage(Settings(database_url=url), migrate=True)
    try:
        assert isinstance(opened, SqlStorage)
        yield SqlThrottleStorage(opened.engine, clock=throttle_clock)
    finally:
        await opened.close()


# --- wave 2: outbox, mfa, oauth (keyturn.stores.wave2) ----------------------------------


@pytest.fixture
def wave2(storage: Storage) -> Wave2Stores:
    """The wave-2 stores of each storage kind (the Redis bundle's are the SQL ones)."""
    return wave2_stores(storage)


@pytest.fixture(
    params=[pytest.param("sqlite"), pytest.param("postgres", marks=pytest.mark.postgres)]
)
async def sql_storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStorage]:
    """A fresh, migrated SQL storage (for what only a database has: cascades, rows)."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'keyturn.db'}"
        opened = await open_storage(Settings(database_url=url))
    else:
        url = request.getfixturevalue("postgres_database_url")
        opened = await open_storage(Settings(database_url=url), migrate=True)
    assert isinstance(opened, SqlStorage)
    try:
        yield opened
    finally:
        await opened.close()
