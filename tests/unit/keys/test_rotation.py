"""KeyManager: first key, rotation, reloads across instances, and the runtime wiring."""

from __future__ import annotations

import base64
import json

import pytest

from keyturn.clock import FrozenClock
from keyturn.errors import ConfigurationError, InvalidToken, StoreUnavailable
from keyturn.keys.encryption import KeyEncryptor, generate_kek
from keyturn.keys.records import generate_key
from keyturn.keys.rotation import KeyManager, key_state
from keyturn.runtime import Keyturn
from keyturn.settings import Settings
from keyturn.stores.memory import MemoryKeyStore, MemoryStorage
from keyturn.tokens.access import TokenIssuer, TokenVerifier

SETTINGS = Settings(
    issuer="https://auth.example.com", access_token_ttl=900, clock_leeway=5, staleness_bound=2
)
WINDOW = 905


@pytest.fixture
def clock() -> FrozenClock:
    """Shared by every manager of a test, like instances sharing real time."""
    return FrozenClock()


@pytest.fixture
def store() -> MemoryKeyStore:
    """One key store shared by the managers of a test, like a database."""
    return MemoryKeyStore()


@pytest.fixture
def encryptor() -> KeyEncryptor:
    """The key-encryption key every instance of a test shares."""
    return KeyEncryptor.from_text(generate_kek())


def manager(store: MemoryKeyStore, encryptor: KeyEncryptor, clock: FrozenClock) -> KeyManager:
    return KeyManager(store, encryptor, SETTINGS, clock)


async def test_first_load_generates_one_key_with_the_configured_alg(
    store: MemoryKeyStore, encryptor: KeyEncryptor, clock: FrozenClock
) -> None:
    """An empty store gets one active key of settings.signing_alg; a second load adds none."""
    ring = await manager(store, encryptor, clock).load()
    assert ring.signing_key.alg == SETTINGS.signing_alg
    await manager(store, encryptor, clock).load()
    assert len(await store.list()) == 1


async def test_private_keys_are_stored_encrypted(
    store: MemoryKeyStore, encryptor: KeyEncryptor, clock: FrozenClock
) -> None:
    """The stored private_key is the sealed form, not the JWK JSON."""
    ring = await manager(store, encryptor, clock).load()
    (stored,) = await store.list()
    assert b'"d"' not in stored.private_key
    assert encryptor.unseal(stored).private_key == ring.signing_key.private_key


async def test_wrong_kek_refuses_to_load(
    store: MemoryKeyStore, encryptor: KeyEncryptor, clock: FrozenClock
) -> None:
    """Keys sealed under one KEK do not load under another (ConfigurationError)."""
    await manager(store, encryptor, clock).load()
    other = KeyEncryptor.from_text(generate_kek())
    with pytest.raises(ConfigurationError):
        await manager(store, other, clock).load()


async def test_rotation_signs_at_once_and_the_old_key_verifies_for_the_window(
    store: MemoryKeyStore, encryptor: KeyEncryptor, clock: FrozenClock
) -> None:
    """After rotate the new key signs; the old one stays in the JWKS and verifies
    until retired_at + ttl + leeway, then leaves both."""
    keys = await manager(store, encryptor, clock).load()
    old_kid = keys.signing_key.kid
    mgr = manager(store, encryptor, clock)
    await mgr.load()
    issuer = TokenIssuer(mgr.ring, SETTINGS, clock)
    verifier = TokenVerifier(mgr.ring, SETTINGS, clock, cache_entries=0)
    mgr.subscribe(issuer.use_keyring)
    mgr.subscribe(verifier.use_keyring)
    old_token, _ = issuer.issue("u", sid="s")

    new = await mgr.rotate(SETTINGS.signing_alg)
    assert new.private_key == b""
    assert mgr.ring.signing_key.kid == new.kid
    new_token, _ = issuer.issue("u", sid="s")
    assert verifier.verify(new_token).sub == "u"
    assert verifier.verify(old_token).sub == "u"
    assert {k["kid"] for k in mgr.jwks()["keys"]} == {old_kid, new.kid}

    clock.advance(WINDOW - 1)
    await mgr.reload_if_stale()  # the window is still open: the old key stays
    assert old_kid in {k["kid"] for k in mgr.jwks()["keys"]}
    clock.advance(1)
    assert await mgr.reload_if_stale() is True
    assert {k["kid"] for k in mgr.jwks()["keys"]} == {new.kid}
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(old_token)
    assert caught.value.reason == "unknown_kid"


async def test_another_instance_notices_a_rotation_within_the_bound(
    store: MemoryKeyStore, encryptor: KeyEncryptor, clock: FrozenClock
) -> None:
    """A rotation by one manager (the CLI) reaches another after staleness_bound, with
    no store read before then."""
    server = manager(store, encryptor, clock)
    await server.load()
    cli = manager(store, encryptor, clock)
    await cli.load()
    new = await cli.rotate()
    assert await server.reload_if_stale() is False  # read less than a bound ago
    assert server.ring.signing_key.kid != new.kid
    clock.advance(2)
    assert await server.reload_if_stale() is True
    assert server.ring.signing_key.kid == new.kid
    assert await server.reload_if_stale() is False


async def test_reload_reads_the_store_at_most_once_per_bound(
    store: MemoryKeyStore,
    encryptor: KeyEncryptor,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Many reload_if_stale calls inside one bound cost one store read; an unchanged
    fingerprint does not rebuild the ring."""
    mgr = manager(store, encryptor, clock)
    await mgr.load()
    reads = 0
    original = store.list

    async def counting() -> list:  # type: ignore[type-arg]
        nonlocal reads
        reads += 1
        return await original()

    monkeypatch.setattr(store, "list", counting)
    ring = mgr.ring
    clock.advance(2)
    for _ in range(50):
        assert await mgr.reload_if_stale() is False
    assert reads == 1
    assert mgr.ring is ring


async def test_unknown_kid_reload_is_rate_limited(
    store: MemoryKeyStore, encryptor: KeyEncryptor, clock: FrozenClock
) -> None:
    """on_unknown_kid re-reads at once the first time, then at most once per bound."""
    server = manager(store, encryptor, clock)
    await server.load()
    cli = manager(store, encryptor, clock)
    await cli.load()
    first = await cli.rotate()
    assert await server.on_unknown_kid() is True
    assert server.ring.signing_key.kid == first.kid
    second = await cli.rotate()
    assert await server.on_unknown_kid() is False  # inside the bound: no read
    clock.advance(2)
    assert await server.on_unknown_kid() is True
    assert server.ring.signing_key.kid == second.kid


async def test_store_outage_keeps_the_current_ring(
    store: MemoryKeyStore,
    encryptor: KeyEncryptor,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If the key list cannot be re-read, the loaded keys keep working."""
    mgr = manager(store, encryptor, clock)
    ring = await mgr.load()

    async def down() -> list:  # type: ignore[type-arg]
        raise StoreUnavailable()

    monkeypatch.setattr(store, "list", down)
    clock.advance(10)
    assert await mgr.reload_if_stale() is False
    assert mgr.ring is ring


def test_key_state_names_the_three_phases() -> None:
    """active while unretired, verifying inside the window, expired after it."""
    key = generate_key("ES256", now=0)
    assert key_state(key, now=10, window=WINDOW) == "active"
    retired = key.retire(100)
    assert key_state(retired, now=100 + WINDOW - 1, window=WINDOW) == "verifying"
    assert key_state(retired, now=100 + WINDOW, window=WINDOW) == "expired"


async def test_runtime_exposes_keys_issuer_and_verifier(clock: FrozenClock) -> None:
    """Keyturn.start() loads the keys; a rotation through keyturn.keys reaches the
    runtime's issuer and verifier."""
    async with Keyturn(SETTINGS, storage=MemoryStorage(), clock=clock) as keyturn:
        token, _ = keyturn.token_issuer.issue("u", sid="s")
        assert keyturn.token_verifier.verify(token).sub == "u"
        new = await keyturn.keys.rotate()
        fresh, _ = keyturn.token_issuer.issue("u", sid="s")
        header = fresh.split(".")[0]
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
        assert decoded["kid"] == new.kid
        assert keyturn.token_verifier.verify(token).sub == "u"


async def test_runtime_keys_need_start() -> None:
    """Before start(), keyturn.keys raises RuntimeError instead of a half-built object."""
    keyturn = Keyturn(SETTINGS, storage=MemoryStorage())
    with pytest.raises(RuntimeError):
        _ = keyturn.keys


async def test_each_algorithm_keeps_its_own_active_key(
    store: MemoryKeyStore, encryptor: KeyEncryptor, clock: FrozenClock
) -> None:
    """ensure("RS256") adds an RS256 key beside the access-token key without taking
    over access tokens; both are in the JWKS, and a second ensure adds nothing."""
    mgr = manager(store, encryptor, clock)
    await mgr.load()
    access_kid = mgr.ring.signing_key.kid
    await mgr.ensure("RS256")
    await mgr.ensure("RS256")
    rsa = [key for key in await mgr.list() if key.alg == "RS256"]
    assert len(rsa) == 1
    assert mgr.ring.signing_key.kid == access_kid  # access tokens keep --signing-alg
    assert mgr.ring.signer("RS256")[0].kid == rsa[0].kid
    assert {k["kid"] for k in mgr.jwks()["keys"]} == {access_kid, rsa[0].kid}
    rotated = await mgr.rotate("RS256")
    assert mgr.ring.signer("RS256")[0].kid == rotated.kid
    assert mgr.ring.signing_key.kid == access_kid
