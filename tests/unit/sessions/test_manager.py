"""The session manager: IDs, CSRF, timeouts, the cache, revocation, rotation."""

from __future__ import annotations

import asyncio
import base64
import collections
import dataclasses
import hashlib
import hmac
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from keyturn.clock import FrozenClock
from keyturn.csrf import check_session_csrf, session_csrf_token
from keyturn.errors import CsrfFailed, NotAuthenticated, NotFound, StoreUnavailable
from keyturn.sessions.ids import hash_secret
from keyturn.sessions.manager import SessionManager
from keyturn.settings import Settings
from keyturn.stores.factory import open_storage
from keyturn.stores.memory import MemoryStorage
from keyturn.stores.protocols import Storage
from keyturn.stores.records import User

IDLE = 1800
MAX_AGE = 12 * 3600


class Counting:
    """Wraps a store, counting (and optionally failing) every method call."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: collections.Counter[str] = collections.Counter()
        self.fail = False

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.inner, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            await asyncio.sleep(0)  # a real store yields to the event loop
            if self.fail:
                raise StoreUnavailable("down")
            return await method(*args, **kwargs)

        return call

    @property
    def total(self) -> int:
        return sum(self.calls.values())


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "session_idle_timeout": IDLE,
        "session_max_age": MAX_AGE,
        "remember_idle_timeout": 7 * 86_400,
        "remember_max_age": 30 * 86_400,
        "session_touch_interval": 60,
        "staleness_bound": 2.0,
        "max_sessions_per_user": 10,
    }
    values.update(overrides)
    return Settings(**values)


class Env:
    """A manager over counted memory stores and a frozen clock."""

    def __init__(self, storage: Storage | None = None, **overrides: Any) -> None:
        self.storage = storage or MemoryStorage()
        self.clock = FrozenClock()
        self.sessions = Counting(self.storage.sessions)
        self.users = Counting(self.storage.users)
        self.manager = SessionManager(self.sessions, self.users, settings(**overrides), self.clock)

    async def user(self, email: str = "alice@example.com") -> User:
        user = User(id=str(uuid.uuid4()), email=email, password_hash="h", created_at=0.0)
        await self.storage.users.add(user)
        return user

    def reset_counts(self) -> None:
        self.sessions.calls.clear()
        self.users.calls.clear()

    @property
    def store_calls(self) -> int:
        return self.sessions.total + self.users.total


@pytest.fixture
def env() -> Env:
    """Memory storage, frozen clock, default-like settings."""
    return Env()


# --- IDs and hashing -------------------------------------------------------------------


async def test_ids_are_256_bit_unique_and_opaque(env: Env) -> None:
    """1000 sign-ins give 1000 distinct 43-char base64url IDs holding 32 random bytes."""
    user = await env.user()
    env.manager.settings = settings(max_sessions_per_user=10_000)
    secrets_ = [(await env.manager.create(user)).secret for _ in range(1000)]
    assert len(set(secrets_)) == 1000
    ones = 0
    for secret in secrets_:
        assert len(secret) == 43
        raw = base64.urlsafe_b64decode(secret + "=")
        assert len(raw) == 32
        ones += sum(bin(byte).count("1") for byte in raw)
        assert user.id not in secret and "alice" not in secret
    assert 0.45 < ones / (1000 * 256) < 0.55
    assert len({secret[:4] for secret in secrets_}) > 900


async def test_store_holds_only_the_hash(env: Env) -> None:
    """The store is keyed by SHA-256 of the secret; the secret appears nowhere in it."""
    issued = await env.manager.create(await env.user())
    stored = await env.storage.sessions.get(hash_secret(issued.secret))
    assert stored == issued.session
    assert issued.secret not in repr(stored)
    assert len(stored.id_hash) == 64 and stored.handle != issued.secret
    assert issued.secret not in repr(issued)


async def test_user_agent_and_ip_are_trimmed(env: Env) -> None:
    """Over-long or control-character-laden client strings are cut before storing."""
    issued = await env.manager.create(
        await env.user(), ip="1.2.3.4\x00" + "9" * 100, user_agent="UA\r\n" + "x" * 1000
    )
    assert issued.session.user_agent is not None and len(issued.session.user_agent) == 512
    assert issued.session.user_agent.startswith("UAx")
    assert issued.session.ip is not None and len(issued.session.ip) == 64


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "short",
        "a" * 42,
        "a" * 44,
        "a" * 42 + "=",
        "a" * 42 + "é",
        "a" * 42 + "\n",
        "a" * 10_000,
        "' OR 1=1 --" + "a" * 32,
        None,
    ],
)
async def test_malformed_ids_are_refused_without_store_calls(env: Env, secret: Any) -> None:
    """Anything that is not 43 base64url characters is refused before any I/O."""
    with pytest.raises(NotAuthenticated):
        await env.manager.validate(secret)
    assert await env.manager.revoke(secret) is None
    assert env.store_calls == 0


async def test_client_chosen_well_formed_id_is_refused(env: Env) -> None:
    """A well-formed ID the server never issued is refused (no fixation)."""
    await env.manager.create(await env.user())
    with pytest.raises(NotAuthenticated):
        await env.manager.validate("A" * 43)


# --- CSRF ---------------------------------------------------------------------------


async def test_csrf_token_is_deterministic_and_per_session(env: Env) -> None:
    """Each session has one stable CSRF token, different from every other session's."""
    user = await env.user()
    first, second = await env.manager.create(user), await env.manager.create(user)
    assert first.csrf_token == session_csrf_token(first.secret)
    assert session_csrf_token(first.secret) == session_csrf_token(first.secret)
    assert first.csrf_token != second.csrf_token
    assert first.secret not in first.csrf_token
    check_session_csrf(first.secret, first.csrf_token)


async def test_csrf_token_needs_no_shared_state(env: Env) -> None:
    """The token is derived from the secret alone (no key, no storage), so every
    instance computes the same one: it equals an HMAC-SHA256 of the secret."""
    issued = await env.manager.create(await env.user())
    digest = hmac.new(issued.secret.encode(), b"keyturn-csrf-v1", hashlib.sha256).digest()
    assert issued.csrf_token == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@pytest.mark.parametrize("submitted", [None, "", 123, "x" * 43, "é" * 43])
async def test_check_csrf_rejects_missing_or_wrong(env: Env, submitted: Any) -> None:
    """Missing, empty, non-string, non-ASCII or wrong tokens raise CsrfFailed."""
    issued = await env.manager.create(await env.user())
    with pytest.raises(CsrfFailed):
        check_session_csrf(issued.secret, submitted)


async def test_check_csrf_rejects_another_sessions_token(env: Env) -> None:
    """A token of one session does not pass for another session of the same user."""
    user = await env.user()
    first, second = await env.manager.create(user), await env.manager.create(user)
    with pytest.raises(CsrfFailed):
        check_session_csrf(second.secret, first.csrf_token)


async def test_rotation_changes_the_csrf_token(env: Env) -> None:
    """After rotation the old CSRF token no longer matches."""
    issued = await env.manager.create(await env.user())
    rotated = await env.manager.rotate(issued.secret)
    assert rotated.csrf_token != issued.csrf_token
    with pytest.raises(CsrfFailed):
        check_session_csrf(rotated.secret, issued.csrf_token)


# --- lifetimes ---------------------------------------------------------------------


async def test_idle_timeout_ends_a_quiet_session(env: Env) -> None:
    """Active within the idle window: accepted; silent for longer: refused and deleted."""
    issued = await env.manager.create(await env.user())
    env.clock.advance(IDLE - 1)
    await env.manager.validate(issued.secret)
    env.clock.advance(IDLE - 1)
    await env.manager.validate(issued.secret)
    env.clock.advance(IDLE)
    with pytest.raises(NotAuthenticated):
        await env.manager.validate(issued.secret)
    assert await env.storage.sessions.get(issued.session.id_hash) is None
    env.clock.advance(-IDLE + 10)  # later requests never revive it
    with pytest.raises(NotAuthenticated):
        await env.manager.validate(issued.secret)


async def test_absolute_timeout_despite_activity(env: Env) -> None:
    """A session used every 10 minutes still ends at its absolute lifetime."""
    issued = await env.manager.create(await env.user())
    step = 600
    for _ in range(MAX_AGE // step - 1):
        env.clock.advance(step)
        await env.manager.validate(issued.secret)
    env.clock.advance(step)
    with pytest.raises(NotAuthenticated):
        await env.manager.validate(issued.secret)
    assert await env.storage.sessions.get(issued.session.id_hash) is None


async def test_remember_lengthens_both_lifetimes(env: Env) -> None:
    """remember=True uses the remember idle timeout and absolute lifetime."""
    user = await env.user()
    normal = await env.manager.create(user)
    remembered = await env.manager.create(user, remember=True)
    assert normal.session.idle_timeout == IDLE
    assert normal.session.expires_at == env.clock.now() + MAX_AGE
    assert remembered.session.remember is True
    assert remembered.session.idle_timeout == 7 * 86_400
    assert remembered.session.expires_at == env.clock.now() + 30 * 86_400
    env.clock.advance(IDLE + 1)
    with pytest.raises(NotAuthenticated):
        await env.manager.validate(normal.secret)
    await env.manager.validate(remembered.secret)


async def test_idle_on_this_instance_but_active_on_another_is_accepted(env: Env) -> None:
    """A locally idle session is re-read: another instance's newer activity counts."""
    issued = await env.manager.create(await env.user())
    other = SessionManager(env.storage.sessions, env.storage.users, settings(), env.clock)
    env.clock.advance(IDLE - 10)
    await other.validate(issued.secret)  # touches the store
    env.clock.advance(20)
    result = await env.manager.validate(issued.secret)
    assert result.session.id_hash == issued.session.id_hash


# --- the cache and the touch interval ------------------------------------------------------


async def test_cache_hit_does_no_store_call(env: Env) -> None:
    """Within the staleness bound, validating costs no I/O at all."""
    issued = await env.manager.create(await env.user())
    env.reset_counts()
    for _ in range(100):
        env.clock.advance(0.01)
        await env.manager.validate(issued.secret)
    assert env.store_calls == 0


async def test_stale_entry_is_reread(env: Env) -> None:
    """Past the staleness bound, one validate re-reads the session and the user."""
    issued = await env.manager.create(await env.user())
    env.reset_counts()
    env.clock.advance(2.5)
    await env.manager.validate(issued.secret)
    assert env.sessions.calls["get"] == 1 and env.users.calls["get"] == 1


async def test_what_is_derived_from_a_read_lives_only_as_long_as_it(env: Env) -> None:
    """Cache hits return the same read (its memo, where the web layer keeps the
    principal and whoami's answer, is reused); a re-read is a new read with an
    empty memo, so nothing derived from the old one survives it."""
    issued = await env.manager.create(await env.user())
    first = await env.manager.validate(issued.secret)
    first.memo["derived"] = "from the first read"
    env.clock.advance(0.01)
    assert await env.manager.validate(issued.secret) is first
    env.clock.advance(2.5)
    again = await env.manager.validate(issued.secret)
    assert again is not first and again.memo == {}
    assert again.user == first.user and again.session.handle == first.session.handle


async def test_concurrent_requests_share_one_refresh(env: Env) -> None:
    """32 requests arriving together on a stale entry cause one store read, not 32."""
    issued = await env.manager.create(await env.user())
    env.reset_counts()
    env.clock.advance(2.5)
    results = await asyncio.gather(*(env.manager.validate(issued.secret) for _ in range(32)))
    assert {r.session.handle for r in results} == {issued.session.handle}
    assert env.sessions.calls["get"] == 1 and env.users.calls["get"] == 1


async def test_entry_is_refreshed_ahead_in_the_background(env: Env) -> None:
    """Past half the staleness bound a request is answered from the cache at once
    while one background read renews the entry, so steady traffic never waits."""
    issued = await env.manager.create(await env.user())
    env.reset_counts()
    env.clock.advance(1.5)  # bound is 2 s
    await env.manager.validate(issued.secret)
    for _ in range(5):
        await asyncio.sleep(0)  # let the background read finish
    assert env.sessions.calls["get"] == 1
    env.clock.advance(1.5)  # 3 s after creation, 1.5 s after the renewal: still fresh
    await env.manager.validate(issued.secret)
    for _ in range(5):
        await asyncio.sleep(0)
    assert env.sessions.calls["get"] == 2  # renewed ahead again, never waited on


async def test_background_refresh_notices_a_revocation_elsewhere(env: Env) -> None:
    """A session deleted by another instance is refused once a refresh has seen it."""
    issued = await env.manager.create(await env.user())
    await env.storage.sessions.delete(issued.session.id_hash)
    env.clock.advance(1.5)
    await env.manager.validate(issued.secret)  # answered from the cache, refresh started
    for _ in range(5):
        await asyncio.sleep(0)
    with pytest.raises(NotAuthenticated):
        await env.manager.validate(issued.secret)


async def test_a_failed_shared_refresh_fails_every_waiter_and_is_retried(env: Env) -> None:
    """If the shared refresh cannot reach the store, all waiters get StoreUnavailable
    and the next request tries again instead of reusing the failure."""
    issued = await env.manager.create(await env.user())
    env.clock.advance(2.5)
    env.sessions.fail = True
    outcomes = await asyncio.gather(
        *(env.manager.validate(issued.secret) for _ in range(4)), return_exceptions=True
    )
    assert all(isinstance(outcome, StoreUnavailable) for outcome in outcomes)
    env.sessions.fail = False
    assert (await env.manager.validate(issued.secret)).session.handle == issued.session.handle


async def test_touch_is_written_at_most_once_per_interval(env: Env) -> None:
    """A request every second for ten minutes writes last_seen about once a minute."""
    issued = await env.manager.create(await env.user())
    env.reset_counts()
    for _ in range(600):
        env.clock.advance(1)
        await env.manager.validate(issued.secret)
    assert 9 <= env.sessions.calls["touch"] <= 10
    stored = await env.storage.sessions.get(issued.session.id_hash)
    assert stored is not None and stored.last_seen_at >= env.clock.now() - 60


async def test_cache_is_bounded(env: Env) -> None:
    """The LRU never holds more than cache_size sessions; evicted ones still validate."""
    user = await env.user()
    manager = SessionManager(env.sessions, env.users, settings(), env.clock, cache_size=3)
    issued = [await manager.create(user) for _ in range(5)]
    assert len(manager.cache) == 3
    env.reset_counts()
    await manager.validate(issued[0].secret)
    assert env.sessions.calls["get"] == 1


# --- revocation ------------------------------------------------------------------------


async def test_revoke_is_effective_on_the_next_validate(env: Env) -> None:
    """Signing out deletes the session; the same secret is refused at once."""
    issued = await env.manager.create(await env.user())
    await env.manager.validate(issued.secret)
    assert await env.manager.revoke(issued.secret) == issued.session
    with pytest.raises(NotAuthenticated):
        await env.manager.validate(issued.secret)
    assert await env.manager.revoke(issued.secret) is None


async def test_deletion_elsewhere_is_seen_within_the_staleness_bound(env: Env) -> None:
    """A session deleted in the store (another instance) is refused after the bound."""
    issued = await env.manager.create(await env.user())
    await env.storage.sessions.delete(issued.session.id_hash)
    env.clock.advance(2.0)
    with pytest.raises(NotAuthenticated):
        await env.manager.validate(issued.secret)


async def test_revoke_handle_of_own_session(env: Env) -> None:
    """A user ends one of their sign-ins by handle; the others keep working."""
    user = await env.user()
    first, second = await env.manager.create(user), await env.manager.create(user)
    assert await env.manager.revoke_handle(user.id, first.session.handle) == first.session
    with pytest.raises(NotAuthenticated):
        await env.manager.validate(first.secret)
    await env.manager.validate(second.secret)
    with pytest.raises(NotFound):
        await env.manager.revoke_handle(user.id, first.session.handle)


@pytest.mark.parametrize("handle", ["", "x", "a" * 10_000, "abc\x00defghijklmn"])
async def test_revoke_handle_of_malformed_handle_is_not_found(env: Env, handle: str) -> None:
    """Garbage handles are NotFound without a store call."""
    with pytest.raises(NotFound):
        await env.manager.revoke_handle("someone", handle)
    assert env.store_calls == 0


async def test_revoke_handle_of_another_users_session_is_not_found(env: Env) -> None:
    """Bob cannot end Alice's session: NotFound, and hers keeps working."""
    alice, bob = await env.user(), await env.user("bob@example.com")
    issued = await env.manager.create(alice)
    with pytest.raises(NotFound):
        await env.manager.revoke_handle(bob.id, issued.session.handle)
    await env.manager.validate(issued.secret)


async def test_revoke_all_keeps_one(env: Env) -> None:
    """Sign out everywhere else: every other session dies, the current one lives."""
    user = await env.user()
    other_user = await env.manager.create(await env.user("bob@example.com"))
    issued = [await env.manager.create(user) for _ in range(3)]
    ended = await env.manager.revoke_all(user.id, keep_secret=issued[1].secret)
    assert {s.id_hash for s in ended} == {issued[0].session.id_hash, issued[2].session.id_hash}
    for gone in (issued[0], issued[2]):
        with pytest.raises(NotAuthenticated):
            await env.manager.validate(gone.secret)
    await env.manager.validate(issued[1].secret)
    await env.manager.validate(other_user.secret)
    assert len(await env.manager.revoke_all(user.id)) == 1


async def test_forget_user_drops_cached_sessions(env: Env) -> None:
    """After forget_user the next validate asks the store again."""
    user = await env.user()
    issued = await env.manager.create(user)
    env.reset_counts()
    env.manager.forget_user(user.id)
    await env.manager.validate(issued.secret)
    assert env.sessions.calls["get"] == 1


# --- rotation --------------------------------------------------------------------------


async def test_rotate_kills_the_old_secret_and_keeps_the_handle(env: Env) -> None:
    """Rotation issues a new secret for the same sign-in; the old one is dead at once."""
    issued = await env.manager.create(await env.user())
    env.clock.advance(100)
    rotated = await env.manager.rotate(issued.secret, auth_time=env.clock.now())
    assert rotated.secret != issued.secret
    assert rotated.session.id_hash != issued.session.id_hash
    assert rotated.session.handle == issued.session.handle
    assert rotated.session.created_at == issued.session.created_at
    assert rotated.session.expires_at == issued.session.expires_at
    assert rotated.session.auth_time == env.clock.now()
    with pytest.raises(NotAuthenticated):
        await env.manager.validate(issued.secret)
    assert (await env.manager.validate(rotated.secret)).session == rotated.session
    with pytest.raises(NotAuthenticated):
        await env.manager.rotate(issued.secret)


# --- limits, users, outages -----------------------------------------------------------------


async def test_max_per_user_evicts_the_oldest() -> None:
    """With a cap of 2, the third sign-in evicts the first, which is refused next."""
    env = Env(max_sessions_per_user=2)
    user = await env.user()
    first = await env.manager.create(user)
    env.clock.advance(1)
    second = await env.manager.create(user)
    env.clock.advance(1)
    third = await env.manager.create(user)
    assert third.evicted == [first.session]
    with pytest.raises(NotAuthenticated):
        await env.manager.validate(first.secret)
    await env.manager.validate(second.secret)
    assert [s.handle for s in await env.manager.list_for_user(user.id)] == [
        second.session.handle,
        third.session.handle,
    ]


async def test_list_shows_live_sessions_with_local_activity(env: Env) -> None:
    """list() omits expired sessions and shows the newest last_seen this instance saw."""
    user = await env.user()
    quiet = await env.manager.create(user, remember=False)
    busy = await env.manager.create(user, remember=True)
    env.clock.advance(IDLE + 5)
    await env.manager.validate(busy.secret)
    env.clock.advance(10)  # under the touch interval: not written yet
    await env.manager.validate(busy.secret)
    listed = await env.manager.list_for_user(user.id)
    assert [s.handle for s in listed] == [busy.session.handle]
    assert listed[0].last_seen_at == env.clock.now()
    assert quiet.session.handle not in {s.handle for s in listed}


async def test_disabled_user_is_refused_after_the_staleness_bound(env: Env) -> None:
    """Disabling a user ends their sessions within the bound, and deletes them."""
    user = await env.user()
    issued = await env.manager.create(user)
    await env.storage.users.set_disabled(user.id, True)
    env.clock.advance(2.0)
    with pytest.raises(NotAuthenticated):
        await env.manager.validate(issued.secret)
    assert await env.storage.sessions.list_for_user(user.id) == []


async def test_disabled_user_gets_no_session(env: Env) -> None:
    """create() refuses an account that is disabled."""
    user = dataclasses.replace(await env.user(), disabled=True)
    with pytest.raises(NotAuthenticated):
        await env.manager.create(user)


async def test_store_outage_fails_closed(env: Env) -> None:
    """On a miss or a stale entry, an unreachable store raises StoreUnavailable."""
    issued = await env.manager.create(await env.user())
    env.sessions.fail = True
    await env.manager.validate(issued.secret)  # cached answer within the bound
    env.clock.advance(2.0)
    with pytest.raises(StoreUnavailable):
        await env.manager.validate(issued.secret)
    fresh = SessionManager(env.sessions, env.users, settings(), env.clock)
    with pytest.raises(StoreUnavailable):
        await fresh.validate(issued.secret)


async def test_user_store_outage_fails_closed(env: Env) -> None:
    """An unreachable user store on refresh is an outage, never an accept."""
    issued = await env.manager.create(await env.user())
    env.users.fail = True
    env.clock.advance(2.0)
    with pytest.raises(StoreUnavailable):
        await env.manager.validate(issued.secret)


async def test_sweep_removes_expired_sessions(env: Env) -> None:
    """sweep() deletes idle and over-age sessions from the store and counts them."""
    user = await env.user()
    old = await env.manager.create(user)
    env.clock.advance(IDLE + 1)
    live = await env.manager.create(user)
    assert await env.manager.sweep() == 1
    assert await env.storage.sessions.get(old.session.id_hash) is None
    assert await env.storage.sessions.get(live.session.id_hash) == live.session


# --- against SQLite ----------------------------------------------------------------------


@pytest.fixture
async def sqlite_env(tmp_path: Path) -> AsyncIterator[Env]:
    """The manager over a migrated SQLite file."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'keyturn.db'}"
    storage = await open_storage(Settings(database_url=url))
    try:
        yield Env(storage, max_sessions_per_user=2)
    finally:
        await storage.close()


async def test_sqlite_full_lifecycle(sqlite_env: Env) -> None:
    """Create, validate, touch, rotate, cap and revoke work the same on SQLite."""
    env = sqlite_env
    user = await env.user()
    first = await env.manager.create(user, ip="127.0.0.1", user_agent="pytest")
    env.clock.advance(61)
    await env.manager.validate(first.secret)
    stored = await env.storage.sessions.get(first.session.id_hash)
    assert stored is not None and stored.last_seen_at == env.clock.now()
    rotated = await env.manager.rotate(first.secret)
    with pytest.raises(NotAuthenticated):
        await env.manager.validate(first.secret)
    env.clock.advance(1)
    second = await env.manager.create(user)
    env.clock.advance(1)
    third = await env.manager.create(user)
    assert third.evicted == [rotated.session]
    assert await env.manager.revoke_handle(user.id, second.session.handle) == second.session
    assert [s.handle for s in await env.manager.list_for_user(user.id)] == [third.session.handle]


async def test_sqlite_disabled_user_sessions_are_deleted(sqlite_env: Env) -> None:
    """A disabled user's sessions are refused and removed from the SQLite store."""
    env = sqlite_env
    user = await env.user()
    issued = await env.manager.create(user)
    await env.storage.users.set_disabled(user.id, True)
    env.clock.advance(3)
    with pytest.raises(NotAuthenticated):
        await env.manager.validate(issued.secret)
    assert await env.storage.sessions.list_for_user(user.id) == []


# --- reads racing with sign-outs ---------------------------------------------------------


class PausedReads:
    """Wraps a session store: ``get`` reads, then waits for ``release`` before it
    answers, so a sign-out can land while the read is in flight."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.paused = False
        self.reading = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def get(self, id_hash: str) -> Any:
        found = await self.inner.get(id_hash)
        if self.paused:
            self.reading.set()
            await self.release.wait()
        return found


def paused_env(**overrides: Any) -> tuple[Env, PausedReads]:
    env = Env(**overrides)
    paused = PausedReads(env.sessions)
    env.manager = SessionManager(paused, env.users, settings(**overrides), env.clock)
    return env, paused


@pytest.mark.parametrize("how", ["revoke", "revoke_all", "revoke_handle", "elsewhere"])
async def test_a_read_in_flight_at_sign_out_does_not_bring_the_session_back(how: str) -> None:
    """A background refresh that read the session just before a sign-out must not
    put it back into the cache: the signed-out cookie is refused at once, not when
    the entry next goes stale (found by the soak of #17)."""
    env, paused = paused_env()
    user = await env.user()
    issued = await env.manager.create(user)
    env.clock.advance(1.5)  # past half the staleness bound: the next hit refreshes ahead
    paused.paused = True
    await env.manager.validate(issued.secret)  # answered from the cache; the read starts
    await asyncio.wait_for(paused.reading.wait(), 1)
    if how == "revoke":
        await env.manager.revoke(issued.secret)
    elif how == "revoke_all":
        await env.manager.revoke_all(user.id)
    elif how == "revoke_handle":
        await env.manager.revoke_handle(user.id, issued.session.handle)
    else:  # another instance deleted it and its change arrived here
        await env.storage.sessions.delete(issued.session.id_hash)
        env.manager.forget(issued.session.id_hash)
    paused.paused = False
    paused.release.set()
    for _ in range(10):
        await asyncio.sleep(0)  # let the background read finish
    with pytest.raises(NotAuthenticated):
        await env.manager.validate(issued.secret)


async def test_a_sign_out_of_another_session_does_not_stop_caching() -> None:
    """Only the session (or user) that was signed out is kept out of the cache: a
    read of another user's session in flight at the same time is cached as usual."""
    env, paused = paused_env()
    alice, bob = await env.user(), await env.user("bob@example.com")
    a = await env.manager.create(alice)
    b = await env.manager.create(bob)
    env.clock.advance(1.5)
    paused.paused = True
    await env.manager.validate(a.secret)
    await asyncio.wait_for(paused.reading.wait(), 1)
    await env.manager.revoke(b.secret)
    paused.paused = False
    paused.release.set()
    for _ in range(10):
        await asyncio.sleep(0)
    env.reset_counts()
    assert (await env.manager.validate(a.secret)).session.handle == a.session.handle
    assert env.sessions.calls["get"] == 0  # the refreshed entry was cached
