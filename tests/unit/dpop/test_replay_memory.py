"""The in-process replay cache: bounded, TTL'd, failing closed when full, and what
the verifier stores in it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from tests.unit.dpop.proofs import URL, Client

from keyturn.clock import FrozenClock
from keyturn.dpop import DpopVerifier, MemoryReplayCache, replay_key
from keyturn.errors import InvalidDpopProof, StoreUnavailable


async def test_key_is_accepted_once_until_it_expires(clock: FrozenClock) -> None:
    """add() is True for a new key, False within its TTL, True again after it."""
    cache = MemoryReplayCache(clock)
    assert await cache.add("k", 10) is True
    clock.advance(9.9)
    assert await cache.add("k", 10) is False
    clock.advance(0.2)
    assert await cache.add("k", 10) is True


async def test_expired_entries_are_dropped(clock: FrozenClock) -> None:
    """Old entries do not pile up: each add drops the expired ones."""
    cache = MemoryReplayCache(clock)
    for index in range(100):
        await cache.add(f"k{index}", 5)
    clock.advance(6)
    await cache.add("new", 5)
    assert len(cache) == 1


async def test_full_cache_refuses_instead_of_forgetting(clock: FrozenClock) -> None:
    """At max_entries live entries, add() fails closed; no live entry is evicted."""
    cache = MemoryReplayCache(clock, max_entries=2)
    await cache.add("a", 60)
    await cache.add("b", 60)
    with pytest.raises(StoreUnavailable):
        await cache.add("c", 60)
    assert await cache.add("a", 60) is False  # still remembered


async def test_full_cache_with_mixed_ttls_sweeps_expired_entries(clock: FrozenClock) -> None:
    """An expired entry behind a live one is swept when the cache is full."""
    cache = MemoryReplayCache(clock, max_entries=2)
    await cache.add("long", 60)
    await cache.add("short", 1)
    clock.advance(2)
    assert await cache.add("c", 60) is True


async def test_expired_entry_behind_a_live_one_is_fresh_again(clock: FrozenClock) -> None:
    """An entry past its TTL but not yet dropped counts as new once, then is
    remembered again; every expired entry is dropped once the old end expires."""
    cache = MemoryReplayCache(clock)
    await cache.add("long", 60)
    await cache.add("short", 1)
    clock.advance(2)
    assert await cache.add("short", 1) is True
    assert await cache.add("short", 1) is False
    clock.advance(59)
    assert await cache.add("new", 5) is True
    assert len(cache) == 1


async def test_store_outage_refuses_the_proof(es256: Client, clock: FrozenClock) -> None:
    """When the replay cache cannot answer, the proof is refused, never accepted."""

    class DownCache:
        async def add(self, key: str, ttl: int) -> bool:
            raise StoreUnavailable("down")

    with pytest.raises(StoreUnavailable):
        await DpopVerifier(DownCache(), clock).verify(es256.proof(), method="GET", url=URL)


async def test_cache_entry_outlives_the_proof_window(
    es256: Client, cache: MemoryReplayCache, clock: FrozenClock
) -> None:
    """A proof dated at the skew limit is remembered until it is too old to accept."""
    verifier = DpopVerifier(cache, clock)
    proof = es256.proof(claims={"iat": int(clock.now()) + 5})
    await verifier.verify(proof, method="GET", url=URL)
    clock.advance(65)  # iat + 60: the last second the proof would pass
    with pytest.raises(InvalidDpopProof) as caught:
        await verifier.verify(proof, method="GET", url=URL)
    assert caught.value.reason == "replayed"
    assert verifier.replay_ttl == 66


def test_replay_key_hides_the_jti_and_has_a_fixed_length() -> None:
    """Keys are SHA-256 hex: nothing the client wrote, always 64 characters."""
    key = replay_key("jkt", URL, "my-jti" * 40)
    assert len(key) == 64
    assert "jti" not in key
    assert replay_key("jkt2", URL, "my-jti") != replay_key("jkt", URL, "my-jti")


def test_invalid_verifier_settings_are_refused(
    cache: MemoryReplayCache, clock: FrozenClock
) -> None:
    """Non-positive windows and symmetric or unknown algorithms are configuration errors."""
    for kwargs in (
        {"max_age": 0},
        {"clock_skew": -1},
        {"algorithms": ["HS256"]},
        {"algorithms": []},
    ):
        with pytest.raises(ValueError):
            DpopVerifier(cache, clock, **kwargs)  # type: ignore[arg-type]


def test_dpop_core_imports_no_framework_and_no_redis() -> None:
    """keyturn.dpop works without Starlette, FastAPI or redis-py being imported."""
    code = (
        "import sys, keyturn.dpop, keyturn.dpop.redis;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('starlette', 'fastapi', 'redis')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
