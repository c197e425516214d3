"""Redis down: every operation fails closed, fast; Redis back: service resumes on
the same connection, with what was written before (AOF)."""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from tests.services import RedisServer, free_port

from keyturn.accounts.throttle import LoginThrottle, throttle_key
from keyturn.clock import FrozenClock
from keyturn.errors import ConfigurationError, StoreUnavailable
from keyturn.settings import Settings
from keyturn.stores.factory import open_storage
from keyturn.stores.records import Revocation, Session
from keyturn.stores.redis import RedisConnection, RedisThrottleStorage, SqlRedisStorage

T0 = 1_800_000_000.0

#: The brief's bound: an unreachable Redis must be reported well within this.
FAST = 3.0


def make_session(user_id: str, created_at: float = T0) -> Session:
    return Session(
        id_hash=hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
        handle=secrets.token_urlsafe(12),
        user_id=user_id,
        created_at=created_at,
        last_seen_at=created_at,
        idle_timeout=1800,
        expires_at=created_at + 12 * 3600,
        auth_time=created_at,
    )


async def fails_fast(operation: Callable[[], Awaitable[object]]) -> StoreUnavailable:
    """Run ``operation``; it must raise StoreUnavailable within FAST seconds."""
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as caught:
        await asyncio.wait_for(operation(), timeout=FAST + 5)
    elapsed = time.monotonic() - started
    assert elapsed < FAST, f"took {elapsed:.2f} s to report the outage"
    return caught.value


@pytest.fixture
async def storage(private_redis: RedisServer, tmp_path: Path) -> AsyncIterator[SqlRedisStorage]:
    """SQLite + the private Redis, opened the way `keyturn serve` opens it."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'keyturn.db'}", redis_url=private_redis.url
    )
    opened = await open_storage(settings)
    assert isinstance(opened, SqlRedisStorage)
    try:
        yield opened
    finally:
        await opened.close()


async def test_redis_stopped_fails_closed_fast_and_recovers_with_its_data(
    private_redis: RedisServer, storage: SqlRedisStorage
) -> None:
    """Stop Redis: ping, every session and revocation operation and the throttle
    raise StoreUnavailable in under 3 s. Start it again: the same storage object
    works at once, and the session and revocation written before are still there."""
    user = str(uuid.uuid4())
    kept = make_session(user)
    await storage.sessions.create(kept, max_per_user=10)
    revoked = await storage.revocations.add(Revocation("sid", kept.handle, T0, T0 + 3600))
    throttle = LoginThrottle(
        RedisThrottleStorage(storage.redis, clock=FrozenClock(T0)), Settings(), FrozenClock(T0)
    )
    account = throttle_key("a@example.com")

    private_redis.stop()
    operations: list[Callable[[], Awaitable[object]]] = [
        storage.ping,
        lambda: storage.sessions.get(kept.id_hash),
        lambda: storage.sessions.get_by_handle(kept.handle),
        lambda: storage.sessions.create(make_session(user), max_per_user=10),
        lambda: storage.sessions.touch(kept.id_hash, T0 + 1),
        lambda: storage.sessions.delete(kept.id_hash),
        lambda: storage.sessions.delete_for_user(user),
        lambda: storage.sessions.list_for_user(user),
        lambda: storage.sessions.list_all(),
        lambda: storage.sessions.sweep(T0),
        lambda: storage.revocations.add(Revocation("jti", "x", T0, T0 + 60)),
        lambda: storage.revocations.changes(after_seq=0, since=math.inf, now=T0),
        lambda: storage.revocations.sweep(T0),
        lambda: throttle.check(account, "192.0.2.1"),
        lambda: throttle.record_failure(account, "192.0.2.1"),
        lambda: throttle.record_success(account),
    ]
    for operation in operations:
        error = await fails_fast(operation)
        assert "\n" not in error.detail
    assert await storage.users.list() == []  # the SQL side is unaffected

    private_redis.start()
    await storage.ping()
    assert await storage.sessions.get(kept.id_hash) == kept
    assert await storage.sessions.get_by_handle(kept.handle) == kept
    assert await storage.revocations.changes(after_seq=0, since=math.inf, now=T0) == [revoked]
    await throttle.check(account, "192.0.2.1")
    newer = await storage.revocations.add(Revocation("jti", "y", T0, T0 + 60))
    assert newer.seq > revoked.seq


async def test_a_server_that_never_answers_times_out(tmp_path: Path) -> None:
    """A Redis that accepts connections but never replies (hung, or a black hole
    behind a proxy) is reported within the timeout, not waited on forever."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    connection = RedisConnection(f"redis://:hunter2-secret@127.0.0.1:{port}/0")
    try:
        error = await fails_fast(connection.ping)
        assert "hunter2-secret" not in error.detail
        assert f"127.0.0.1:{port}" in error.detail
    finally:
        await connection.close()
        listener.close()


async def test_wrong_password_and_nothing_listening_never_show_the_password(
    private_redis: RedisServer,
) -> None:
    """Authentication failures and refused connections are StoreUnavailable whose
    one-line message names the server but masks the password."""
    admin = RedisConnection(private_redis.url)
    try:
        await admin.client.config_set("requirepass", "right-password")
    finally:
        await admin.close()
    for url in (
        f"redis://:wrong-password-42@127.0.0.1:{private_redis.port}/0",
        f"redis://keyturn:wrong-password-42@127.0.0.1:{free_port()}/0",
    ):
        connection = RedisConnection(url)
        try:
            error = await fails_fast(connection.ping)
        finally:
            await connection.close()
        assert "wrong-password-42" not in error.detail
        assert "\n" not in error.detail
        assert "***" in error.detail


async def test_open_storage_refuses_an_unreachable_redis_fast(tmp_path: Path) -> None:
    """Starting against a Redis that is not there fails with StoreUnavailable (the
    server refuses to start with one clear line) instead of hanging."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'keyturn.db'}",
        redis_url=f"redis://:pw-xyz@127.0.0.1:{free_port()}/0",
    )
    error = await fails_fast(lambda: open_storage(settings))
    assert "pw-xyz" not in error.detail


async def test_redis_url_without_redis_py_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without the redis extra, --redis-url says how to install it."""
    for name in [name for name in sys.modules if name.startswith("keyturn.stores.redis")]:
        monkeypatch.delitem(sys.modules, name)
    for name in [name for name in sys.modules if name.partition(".")[0] == "redis"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if redis-py were not installed
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'keyturn.db'}",
        redis_url="redis://127.0.0.1:6379/0",
    )
    with pytest.raises(ConfigurationError, match=r"pip install 'keyturn\[redis\]'"):
        await open_storage(settings)


async def test_healthz_check_of_the_bundle_names_redis(
    private_redis: RedisServer, storage: SqlRedisStorage
) -> None:
    """ping() checks both backends: the database up and Redis down is an outage,
    reported as Redis."""
    await storage.ping()
    private_redis.stop()
    error = await fails_fast(storage.ping)
    assert error.detail.startswith("cannot reach Redis redis://127.0.0.1:")
    private_redis.start()
    await storage.ping()  # the first command after the restart already succeeds
