"""The Redis connection as an operator configures it: URLs, ACL users, eviction policy."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import pytest
from tests.services import RedisServer

from keyturn.accounts.throttle import LoginThrottle, throttle_key
from keyturn.clock import SystemClock
from keyturn.errors import ConfigurationError
from keyturn.settings import Settings
from keyturn.stores.factory import open_storage
from keyturn.stores.records import Revocation, Session
from keyturn.stores.redis import RedisConnection, RedisThrottleStorage, SqlRedisStorage
from keyturn.stores.redis.connection import safe_redis_url

#: The least-privilege ACL of docs/guides/redis.md, word for word.
DOCUMENTED_ACL = (
    "~keyturn:* &keyturn:* +@read +@write +@scripting +@keyspace +@connection "
    "+@pubsub -@dangerous +info +time"
)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:pw@h:6379/0", "redis://:***@h:6379/0"),
        ("redis://user:pw@h/2?password=pw2", "redis://user:***@h/2"),
        ("redis://pw@h", "redis://***@h"),
        ("rediss://h:6380/0", "rediss://h:6380/0"),
        ("unix:///run/redis.sock?db=1", "unix:///run/redis.sock"),
    ],
)
def test_safe_url_masks_every_password(url: str, shown: str) -> None:
    """Messages name the server but never a password (userinfo or query string)."""
    assert safe_redis_url(url) == shown


def test_an_unknown_url_option_is_a_configuration_error() -> None:
    """A typo in the URL's query string is refused when the setting is read, not
    at the first request."""
    with pytest.raises(ConfigurationError, match="bogus"):
        RedisConnection("redis://:pw@127.0.0.1:6379/0?bogus=1")
    with pytest.raises(ConfigurationError, match="invalid --redis-url"):
        RedisConnection("redis://127.0.0.1:notaport/0")


async def acl_user(server: RedisServer, rules: str) -> str:
    """Create ACL user ``keyturn`` with ``rules``; returns its URL."""
    admin = RedisConnection(server.url)
    try:
        await admin.client.execute_command(
            "ACL", "SETUSER", "keyturn", "reset", "on", ">kt-pass", *rules.split()
        )
    finally:
        await admin.close()
    return f"redis://keyturn:kt-pass@127.0.0.1:{server.port}/0"


async def exercise(storage: SqlRedisStorage) -> None:
    """One of every kind of Redis operation keyturn performs."""
    now = time.time()
    session = Session("a" * 64, "handle-1", "user-1", now, now, 1800, now + 3600, now)
    await storage.sessions.create(session, max_per_user=1)
    assert await storage.sessions.get(session.id_hash) == session
    await storage.sessions.touch(session.id_hash, now + 1)
    assert len(await storage.sessions.list_all()) == 1
    assert await storage.sessions.sweep(now + 10**6) == 1
    entry = await storage.revocations.add(Revocation("jti", "j", now, now + 60))
    assert await storage.revocations.changes(after_seq=0, since=math.inf, now=now) == [entry]
    assert await storage.revocations.sweep(now + 100) == 1
    throttle = LoginThrottle(
        RedisThrottleStorage(storage.redis, clock=SystemClock()), Settings(), SystemClock()
    )
    await throttle.check(throttle_key("a@example.com"), "192.0.2.1")
    await throttle.record_failure(throttle_key("a@example.com"), "192.0.2.1")
    assert await throttle.storage.reset() == 2


async def open_with(url: str, tmp_path: Path) -> SqlRedisStorage:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'kt.db'}", redis_url=url)
    storage = await open_storage(settings)
    assert isinstance(storage, SqlRedisStorage)
    return storage


async def test_the_documented_least_privilege_acl_is_enough(
    private_redis: RedisServer, tmp_path: Path
) -> None:
    """keyturn works as an ACL user limited to keyturn:* keys and channels."""
    storage = await open_with(await acl_user(private_redis, DOCUMENTED_ACL), tmp_path)
    try:
        await exercise(storage)
    finally:
        await storage.close()


async def test_an_acl_without_info_still_starts(
    private_redis: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """INFO refused (a managed Redis, a stricter ACL) only skips the eviction check."""
    rules = DOCUMENTED_ACL.replace("+info", "-info")
    with caplog.at_level(logging.INFO, logger="keyturn.stores.redis"):
        storage = await open_with(await acl_user(private_redis, rules), tmp_path)
    try:
        await exercise(storage)
    finally:
        await storage.close()
    assert "cannot check maxmemory-policy" in caplog.text
    assert "kt-pass" not in caplog.text


async def test_an_evicting_policy_is_warned_about(
    private_redis: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """allkeys-* may evict revocation entries (no TTL): keyturn says so at start."""
    admin = RedisConnection(private_redis.url)
    try:
        await admin.client.config_set("maxmemory-policy", "allkeys-lru")
    finally:
        await admin.close()
    with caplog.at_level(logging.WARNING, logger="keyturn.stores.redis"):
        storage = await open_with(private_redis.url, tmp_path)
    await storage.close()
    assert "maxmemory-policy allkeys-lru" in caplog.text
    assert "noeviction" in caplog.text
