"""Three keyturn instances in one process on one store and one memory bus: what one
changes, the others refuse at once (no clock advance); losing the bus falls back to
the staleness bound; a read racing an invalidation is not trusted long."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from keyturn.accounts.passwords import PasswordHasher
from keyturn.clock import FrozenClock
from keyturn.errors import InvalidToken, NotAuthenticated, StoreUnavailable
from keyturn.fanout.buses import MemoryBus, MemoryHub
from keyturn.keys.encryption import KeyEncryptor, generate_kek
from keyturn.runtime import Keyturn
from keyturn.settings import Settings
from keyturn.stores.memory import MemoryStorage
from keyturn.stores.records import Revocation

EMAIL = "alice@example.org"
PASSWORD = "correct horse battery"
IP = "192.0.2.7"
BOUND = 2.0
TTL = 300
KEK = generate_kek()


class Observed:
    """One instance's view of the shared storage: counts (and can fail or pause)
    the reads the caches make."""

    def __init__(self, shared: MemoryStorage) -> None:
        self.shared = shared
        self.reads: collections.Counter[str] = collections.Counter()
        self.down = False
        self.pause: asyncio.Event | None = None  # set: session reads wait after reading
        self.paused = asyncio.Event()
        self.users = self._wrap(shared.users, "users")
        self.sessions = self._wrap(shared.sessions, "sessions")
        self.revocations = self._wrap(shared.revocations, "revocations")
        self.keys, self.refresh, self.clients = shared.keys, shared.refresh, shared.clients
        self.durable = shared.durable
        self.throttle_storage = shared.throttle_storage
        self.wave2 = shared.wave2  # MFA (#15): every sign-in asks for second factors

    def _wrap(self, store: Any, name: str) -> Any:
        observed = self

        class Wrapped:
            def __getattr__(self, method: str) -> Callable[..., Any]:
                inner = getattr(store, method)

                async def call(*args: Any, **kwargs: Any) -> Any:
                    if method in ("get", "changes"):
                        observed.reads[name] += 1
                    if observed.down:
                        raise StoreUnavailable("down")
                    result = await inner(*args, **kwargs)
                    if name == "sessions" and method == "get" and observed.pause is not None:
                        observed.paused.set()
                        await observed.pause.wait()  # holds what it read: now stale
                    return result

                return call

        return Wrapped()

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None


class Cluster:
    """Instances ``a``, ``b``, ``c`` on one store, one hub and one frozen clock."""

    def __init__(self, keyturns: list[Keyturn], views: list[Observed], clock: FrozenClock):
        self.a, self.b, self.c = keyturns
        self.views = dict(zip("abc", views, strict=True))
        self.clock = clock

    def bus(self, keyturn: Keyturn) -> MemoryBus:
        bus = keyturn.fanout.bus
        assert isinstance(bus, MemoryBus)
        return bus


@pytest.fixture
async def cluster(fast_hasher: PasswordHasher) -> AsyncIterator[Cluster]:
    shared = MemoryStorage()
    hub = MemoryHub(FrozenClock())
    clock = FrozenClock()
    # The tokens come from the password grant, off by default (#12).
    settings = Settings(staleness_bound=BOUND, cache_ttl=TTL, password_grant=True)
    views = [Observed(shared) for _ in range(3)]
    keyturns = [
        Keyturn(
            settings,
            storage=view,  # type: ignore[arg-type]
            clock=clock,
            hasher=fast_hasher,
            key_encryptor=KeyEncryptor.from_text(KEK),
            bus=hub.bus(),
        )
        for view in views
    ]
    for keyturn in keyturns:
        await keyturn.start()
    await keyturns[0].accounts.register(EMAIL, PASSWORD)
    await settle()
    yield Cluster(keyturns, views, clock)
    for keyturn in keyturns:
        await keyturn.close()


async def settle() -> None:
    """Let spawned work (key reloads, resyncs) run."""
    for _ in range(10):
        await asyncio.sleep(0)


async def sign_in(keyturn: Keyturn) -> str:
    _, issued = await keyturn.auth.sign_in(EMAIL, PASSWORD, ip=IP, user_agent=None)
    return issued.secret


async def token(keyturn: Keyturn) -> str:
    response = await keyturn.grants.password_grant(EMAIL, PASSWORD, ip=IP, user_agent=None)
    return response.access_token


async def accepted_everywhere(cluster: Cluster, secret: str, access: str) -> None:
    for keyturn in (cluster.a, cluster.b, cluster.c):
        await keyturn.sessions.validate(secret)
        await keyturn.bearer.authenticate(access)


# --- changes on one instance are refused on the others at once -----------------------


async def test_sign_out_on_one_is_refused_on_the_others_at_once(cluster: Cluster) -> None:
    """A sign-out on a is refused by b and c without waiting for the bound."""
    secret = await sign_in(cluster.a)
    for keyturn in (cluster.b, cluster.c):
        await keyturn.sessions.validate(secret)
    await cluster.a.auth.sign_out(secret, ip=IP, user_agent=None)
    for keyturn in (cluster.b, cluster.c):
        with pytest.raises(NotAuthenticated):
            await keyturn.sessions.validate(secret)


async def test_revoking_a_sign_in_by_handle_reaches_the_others(cluster: Cluster) -> None:
    """DELETE /auth/sessions/{id} on b: a and c refuse the session and its tokens."""
    secret = await sign_in(cluster.a)
    validated = await cluster.c.sessions.validate(secret)
    minted = await cluster.c.grants.session_token(validated)
    await cluster.a.bearer.authenticate(minted.access_token)
    await cluster.b.auth.revoke_session(validated.user.id, validated.session.handle)
    with pytest.raises(NotAuthenticated):
        await cluster.c.sessions.validate(secret)
    with pytest.raises(InvalidToken):
        await cluster.a.bearer.authenticate(minted.access_token)


async def test_logout_all_reaches_sessions_and_tokens_everywhere(cluster: Cluster) -> None:
    """Sign-out everywhere on a: b and c refuse every session and access token."""
    secret, access = await sign_in(cluster.b), await token(cluster.c)
    await accepted_everywhere(cluster, secret, access)
    user = await cluster.a.storage.users.get_by_email(EMAIL)
    assert user is not None
    await cluster.a.auth.sign_out_everywhere(user.id)
    for keyturn in (cluster.b, cluster.c):
        with pytest.raises(NotAuthenticated):
            await keyturn.sessions.validate(secret)
        with pytest.raises(InvalidToken):
            await keyturn.bearer.authenticate(access)


async def test_disabling_a_user_reaches_the_others_at_once(cluster: Cluster) -> None:
    """The CLI path (auth.disable_user) on a: b and c refuse session and token."""
    secret, access = await sign_in(cluster.a), await token(cluster.a)
    await accepted_everywhere(cluster, secret, access)
    await cluster.a.auth.disable_user(EMAIL)
    for keyturn in (cluster.b, cluster.c):
        with pytest.raises(NotAuthenticated):
            await keyturn.sessions.validate(secret)
        with pytest.raises(InvalidToken):
            await keyturn.bearer.authenticate(access)


async def test_a_disabled_user_is_refused_even_in_stateless_mode(
    fast_hasher: PasswordHasher,
) -> None:
    """Stateless mode skips the revocation list, so the pushed user change is what
    makes another instance refuse a disabled user's token at once."""
    shared, hub, clock = MemoryStorage(), MemoryHub(FrozenClock()), FrozenClock()
    settings = Settings(
        staleness_bound=BOUND, cache_ttl=TTL, revocation_mode="stateless", password_grant=True
    )
    a, b = (
        Keyturn(
            settings,
            storage=shared,
            clock=clock,
            hasher=fast_hasher,
            key_encryptor=KeyEncryptor.from_text(KEK),
            bus=hub.bus(),
        )
        for _ in range(2)
    )
    await a.start()
    await b.start()
    try:
        await a.accounts.register(EMAIL, PASSWORD)
        access = await token(a)
        await b.bearer.authenticate(access)
        await a.auth.disable_user(EMAIL)
        with pytest.raises(InvalidToken):
            await b.bearer.authenticate(access)
    finally:
        await a.close()
        await b.close()


async def test_password_change_ends_the_old_sessions_elsewhere(cluster: Cluster) -> None:
    """A password change on a: the rotated-away secret and other sessions die on b."""
    mine, other = await sign_in(cluster.a), await sign_in(cluster.a)
    for secret in (mine, other):
        await cluster.b.sessions.validate(secret)
    issued = await cluster.a.auth.change_password(mine, PASSWORD, "a brand new passphrase")
    for secret in (mine, other):
        with pytest.raises(NotAuthenticated):
            await cluster.b.sessions.validate(secret)
    await cluster.b.sessions.validate(issued.secret)


async def test_key_rotation_reaches_the_others_without_waiting(cluster: Cluster) -> None:
    """A rotation on a (e.g. the CLI): b's ring has the new key at once, without
    a token naming it and without a clock advance."""
    new = await cluster.a.keys.rotate()
    await settle()
    assert cluster.b.keys.ring.signing_key.kid == new.kid
    assert cluster.c.keys.ring.signing_key.kid == new.kid
    access = await token(cluster.b)
    await cluster.c.bearer.authenticate(access)


# --- trusted longer while the bus is alive ----------------------------------------------


async def test_a_live_bus_lets_the_caches_skip_the_store_past_the_bound(
    cluster: Cluster,
) -> None:
    """Rule 1: with every change pushed, b serves a session and a token for well
    past the staleness bound without a single store read."""
    secret, access = await sign_in(cluster.a), await token(cluster.a)
    await cluster.b.sessions.validate(secret)
    await cluster.b.bearer.authenticate(access)
    view = cluster.views["b"]
    view.reads.clear()
    for _ in range(10):
        cluster.clock.advance(BOUND)  # 20 s, far past the bound, under 30 and 300
        await cluster.b.sessions.validate(secret)
        await cluster.b.bearer.authenticate(access)
    await settle()
    assert view.reads["sessions"] == 0
    assert view.reads["users"] == 0
    assert view.reads["revocations"] <= 2  # the 30 s resync, in the background


# --- losing the bus ---------------------------------------------------------------------


async def test_without_the_bus_an_instance_falls_back_to_the_bound(cluster: Cluster) -> None:
    """Rule 3: b loses the bus and misses a sign-out; it may serve its cached
    entry for at most the bound, then re-reads and refuses."""
    secret = await sign_in(cluster.a)
    await cluster.b.sessions.validate(secret)
    cluster.bus(cluster.b).disconnect()
    await cluster.a.auth.sign_out(secret, ip=IP, user_agent=None)
    cluster.clock.advance(BOUND)
    with pytest.raises(NotAuthenticated):
        await cluster.b.sessions.validate(secret)


async def test_bus_and_store_down_means_503_not_a_stale_accept(cluster: Cluster) -> None:
    """Rule 3: no bus and no store past the bound: StoreUnavailable for sessions,
    tokens and users alike."""
    secret, access = await sign_in(cluster.a), await token(cluster.a)
    await cluster.b.sessions.validate(secret)
    await cluster.b.bearer.authenticate(access)
    cluster.bus(cluster.b).disconnect()
    cluster.views["b"].down = True
    cluster.clock.advance(BOUND)
    with pytest.raises(StoreUnavailable):
        await cluster.b.sessions.validate(secret)
    with pytest.raises(StoreUnavailable):
        await cluster.b.bearer.authenticate(access)


async def test_after_reconnecting_old_entries_get_only_the_bound(cluster: Cluster) -> None:
    """Rule 4: an entry cached before the bus dropped is re-read once past the
    bound, even though the bus is back; the replica was reloaded in full and
    holds what was written while b was away."""
    secret = await sign_in(cluster.a)
    await cluster.b.sessions.validate(secret)
    bus = cluster.bus(cluster.b)
    bus.disconnect()
    missed = Revocation("jti", "missed-jti", cluster.clock.now(), cluster.clock.now() + 900)
    await cluster.a.storage.revocations.add(missed)  # written, never pushed to b
    bus.reconnect()
    await settle()
    assert cluster.b.revocations._jtis.get("missed-jti") is not None
    view = cluster.views["b"]
    view.reads.clear()
    cluster.clock.advance(BOUND)
    await cluster.b.sessions.validate(secret)
    assert view.reads["sessions"] == 1


async def test_a_publish_that_never_happened_is_caught_by_the_resync(cluster: Cluster) -> None:
    """Rule 5: a signs everyone out while its own bus is down (b hears nothing);
    b's long-trusted entry is refused once its replica is a resync interval old."""
    secret = await sign_in(cluster.a)
    await cluster.b.sessions.validate(secret)
    cluster.bus(cluster.a).disconnect()
    user = await cluster.a.storage.users.get_by_email(EMAIL)
    assert user is not None
    await cluster.a.auth.sign_out_everywhere(user.id)
    cluster.clock.advance(BOUND)
    await cluster.b.sessions.validate(secret)  # pushed nothing; 2 s < 30 s: trusted
    cluster.clock.advance(cluster.b.fanout.resync_interval)
    with pytest.raises(NotAuthenticated):
        await cluster.b.sessions.validate(secret)
    cluster.bus(cluster.a).reconnect()  # the queued changes go out at last


# --- the race ---------------------------------------------------------------------------


async def test_a_read_racing_an_invalidation_is_refused_and_not_cached(
    cluster: Cluster,
) -> None:
    """Rule 2: b reads a session, a rotates its ID away (and b hears it) before b
    caches what it read: b refuses that stale answer and never caches it, so the
    old ID is dead on b at once, not after cache_ttl. (A rotation keeps the handle,
    so no revocation entry backs it up.)"""
    secret = await sign_in(cluster.a)
    view = cluster.views["b"]
    view.pause = asyncio.Event()
    reading = asyncio.create_task(cluster.b.sessions.validate(secret))
    await asyncio.wait_for(view.paused.wait(), 2)
    rotated = await cluster.a.sessions.rotate(secret)
    view.pause.set()
    with pytest.raises(NotAuthenticated):
        await reading  # the read raced the rotation b heard of: refused, not cached
    view.pause = None
    with pytest.raises(NotAuthenticated):
        await cluster.b.sessions.validate(secret)
    cluster.clock.advance(BOUND)
    with pytest.raises(NotAuthenticated):
        await cluster.b.sessions.validate(secret)
    await cluster.b.sessions.validate(rotated.secret)


async def test_a_clean_read_is_trusted_long_for_contrast(cluster: Cluster) -> None:
    """The same read without a racing change keeps cache_ttl trust (no re-read)."""
    secret = await sign_in(cluster.a)
    await cluster.b.sessions.validate(secret)
    view = cluster.views["b"]
    view.reads.clear()
    cluster.clock.advance(BOUND)
    await cluster.b.sessions.validate(secret)
    assert view.reads["sessions"] == 0
