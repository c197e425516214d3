"""What keyturn writes to Redis: names, hash tags (Cluster slots), TTLs, and no secrets."""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
import time
import uuid

from redis.crc import key_slot

from keyturn.accounts.throttle import LoginThrottle, throttle_key
from keyturn.clock import SystemClock
from keyturn.sessions.manager import SessionManager
from keyturn.settings import Settings
from keyturn.stores.memory import MemoryUserStore
from keyturn.stores.records import Revocation, Session, User
from keyturn.stores.redis import (
    RedisConnection,
    RedisRevocationStore,
    RedisSessionStore,
    RedisThrottleStorage,
)
from keyturn.stores.redis.session_store import TTL_GRACE, USERS_KEY

T0 = 1_800_000_000.0


def make_session(user_id: str, created_at: float = T0, **changes: object) -> Session:
    values: dict[str, object] = {
        "id_hash": hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
        "handle": secrets.token_urlsafe(12),
        "user_id": user_id,
        "created_at": created_at,
        "last_seen_at": created_at,
        "idle_timeout": 1800,
        "expires_at": created_at + 12 * 3600,
        "auth_time": created_at,
    }
    values.update(changes)
    return Session(**values)  # type: ignore[arg-type]


async def all_keys(connection: RedisConnection) -> list[str]:
    return sorted([key async for key in connection.client.scan_iter(match="*", count=1000)])


async def everything_stored(connection: RedisConnection) -> str:
    """Every key name and every value in the database, as one text."""
    client = connection.client
    parts: list[str] = []
    for key in await all_keys(connection):
        parts.append(key)
        kind = await client.type(key)
        if kind == "string":
            parts.append(str(await client.get(key)))
        elif kind == "hash":
            parts += [f"{k}={v}" for k, v in (await client.hgetall(key)).items()]
        elif kind == "zset":
            parts += [f"{m}:{s}" for m, s in await client.zrange(key, 0, -1, withscores=True)]
        else:
            raise AssertionError(f"unexpected {kind} key {key}")
    return "\n".join(parts)


def slot(key: str) -> int:
    return key_slot(key.encode())


async def test_every_key_is_prefixed_and_each_users_keys_share_one_slot(
    connection: RedisConnection,
) -> None:
    """All keys start with keyturn:; a user's session keys hash to one Cluster slot
    (so the Lua scripts over them are legal on Redis Cluster), and two users'
    tags differ."""
    store = RedisSessionStore(connection)
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    for user in (alice, alice, bob):
        await store.create(make_session(user), max_per_user=10)
    await RedisRevocationStore(connection).add(Revocation("jti", "j1", T0, T0 + 60))

    keys = await all_keys(connection)
    assert keys and all(key.startswith("keyturn:") for key in keys)
    for user in (alice, bob):
        tagged = [key for key in keys if key.startswith(f"keyturn:{{u:{user}}}:")]
        assert len(tagged) == (3 if user == alice else 2)  # index + one hash per session
        assert {slot(key) for key in tagged} == {key_slot(f"u:{user}".encode())}
    revocation_keys = [key for key in keys if key.startswith("keyturn:{rev}:")]
    assert len(revocation_keys) == 5
    assert {slot(key) for key in revocation_keys} == {key_slot(b"rev")}
    # Pointers: one by id_hash and one by handle per session, in slots of their own.
    assert len([key for key in keys if key.startswith("keyturn:sid:")]) == 3
    assert len([key for key in keys if key.startswith("keyturn:sh:")]) == 3


async def test_a_brace_in_a_user_id_cannot_break_the_tag(connection: RedisConnection) -> None:
    """User ids are percent-encoded inside the tag: one user, one slot, whatever the id."""
    store = RedisSessionStore(connection)
    odd = "a}b{c:d"
    session = make_session(odd)
    await store.create(session, max_per_user=10)
    tagged = [key for key in await all_keys(connection) if key.startswith("keyturn:{u:")]
    assert len({slot(key) for key in tagged}) == 1
    assert await store.get(session.id_hash) == session
    assert await store.list_for_user(odd) == [session]


async def test_session_keys_expire_by_themselves(connection: RedisConnection) -> None:
    """The session hash lives until its idle deadline (+ grace), the pointers until
    the absolute deadline (+ grace); touch() pushes the hash's TTL forward."""
    client = connection.client
    store = RedisSessionStore(connection)
    now = time.time()
    user = str(uuid.uuid4())
    session = make_session(user, now, idle_timeout=600, expires_at=now + 7200)
    await store.create(session, max_per_user=10)
    hash_key = f"keyturn:{{u:{user}}}:s:{session.id_hash}"
    index = f"keyturn:{{u:{user}}}:sessions"

    def seconds(ms: int) -> float:
        return ms / 1000

    assert math.isclose(seconds(await client.pttl(hash_key)), 600 + TTL_GRACE, abs_tol=2)
    assert math.isclose(seconds(await client.pttl(index)), 600 + TTL_GRACE, abs_tol=2)
    for pointer in (f"keyturn:sid:{session.id_hash}", f"keyturn:sh:{session.handle}"):
        assert math.isclose(seconds(await client.pttl(pointer)), 7200 + TTL_GRACE, abs_tol=2)

    await store.touch(session.id_hash, now + 500)  # idle deadline now + 1100
    assert math.isclose(seconds(await client.pttl(hash_key)), 600 + TTL_GRACE, abs_tol=2)
    await store.touch(session.id_hash, now + 7000)  # capped by the absolute deadline
    assert math.isclose(seconds(await client.pttl(hash_key)), 200 + TTL_GRACE, abs_tol=2)
    # The index lives as long as its longest-lived session.
    assert seconds(await client.pttl(index)) >= 600 + TTL_GRACE - 2


async def test_a_session_dropped_by_redis_reads_as_gone_everywhere(
    connection: RedisConnection,
) -> None:
    """When Redis expires a session hash (simulated with DEL), the dangling index
    entry and pointers read as "no such session" and are cleaned up."""
    store = RedisSessionStore(connection)
    user = str(uuid.uuid4())
    dropped, kept = make_session(user, T0), make_session(user, T0 + 1)
    for session in (dropped, kept):
        await store.create(session, max_per_user=10)
    await connection.client.delete(f"keyturn:{{u:{user}}}:s:{dropped.id_hash}")

    assert await store.get(dropped.id_hash) is None
    assert await store.get_by_handle(dropped.handle) is None
    assert await store.delete(dropped.id_hash) is None
    await store.touch(dropped.id_hash, T0 + 100)
    assert await store.list_for_user(user) == [kept]
    assert await store.list_all() == [kept]
    index = await connection.client.zrange(f"keyturn:{{u:{user}}}:sessions", 0, -1)
    assert index == [kept.id_hash]
    # The cap does not count it either.
    newest = make_session(user, T0 + 2)
    assert await store.create(newest, max_per_user=2) == []


async def test_sweep_cleans_pointers_and_the_user_index(connection: RedisConnection) -> None:
    """sweep() deletes expired sessions with their pointers, and forgets users whose
    every session is past its absolute expiry."""
    store = RedisSessionStore(connection)
    gone_user, live_user = str(uuid.uuid4()), str(uuid.uuid4())
    gone = make_session(gone_user, T0, expires_at=T0 + 100)
    live = make_session(live_user, T0, expires_at=T0 + 10_000, idle_timeout=10_000)
    for session in (gone, live):
        await store.create(session, max_per_user=10)
    assert await store.sweep(T0 + 200) == 1
    keys = await all_keys(connection)
    assert not [key for key in keys if gone.id_hash in key or gone.handle in key]
    assert not [key for key in keys if f"{{u:{gone_user}}}" in key]
    assert await connection.client.zrange(USERS_KEY, 0, -1) == [live_user]
    assert await store.list_all() == [live]


async def test_sessions_made_by_the_manager_store_no_secret(connection: RedisConnection) -> None:
    """Through the real SessionManager: Redis holds the SHA-256 of the session ID,
    never the ID itself, nor the CSRF token derived from it."""
    settings = Settings()
    users = MemoryUserStore()
    user = User(id=str(uuid.uuid4()), email="a@example.com", password_hash="x", created_at=T0)
    await users.add(user)
    manager = SessionManager(RedisSessionStore(connection), users, settings, SystemClock())
    issued = await manager.create(user, ip="192.0.2.7", user_agent="pytest")

    stored = await everything_stored(connection)
    assert issued.secret not in stored
    assert issued.csrf_token not in stored
    assert hashlib.sha256(issued.secret.encode()).hexdigest() in stored
    assert (await manager.validate(issued.secret)).user == user
    rotated = await manager.rotate(issued.secret)
    stored = await everything_stored(connection)
    assert issued.secret not in stored and rotated.secret not in stored


async def test_throttle_counters_hold_digests_and_expire(connection: RedisConnection) -> None:
    """The throttle's keys are prefixed, name no e-mail or address, and carry a TTL
    of the window (+ a minute)."""
    settings = Settings()
    counters = RedisThrottleStorage(connection, clock=SystemClock())
    throttle = LoginThrottle(counters, settings, counters.clock)
    account = throttle_key("Someone@Example.org")
    await throttle.check(account, "198.51.100.23")
    await throttle.record_failure(account, "198.51.100.23")
    keys = await all_keys(connection)
    assert len(keys) == 2
    stored = await everything_stored(connection)
    assert "someone" not in stored.lower() and "198.51.100.23" not in stored
    for key in keys:
        assert key.startswith("keyturn:throttle:")
        ttl = await connection.client.pttl(key) / 1000
        assert settings.login_failure_window < ttl <= settings.login_failure_window + 60


async def test_revocation_seq_survives_a_lost_log(connection: RedisConnection) -> None:
    """If Redis loses the log (a flush, no persistence), new entries still get seq
    values above every one handed out before, so replicas cannot skip them."""
    store = RedisRevocationStore(connection)
    before = await store.add(Revocation("jti", "a", T0, T0 + 60))
    await store.add(Revocation("jti", "b", T0, T0 + 60))
    await asyncio.sleep(0.01)  # the restart point is the server clock in milliseconds
    await connection.client.flushdb()
    after = await store.add(Revocation("jti", "c", T0, T0 + 60))
    assert after.seq > before.seq + 1
    assert after.seq < 2**53  # exact as a float, a JSON number and a Redis score
    assert await store.changes(after_seq=before.seq + 1, since=math.inf, now=T0) == [after]
