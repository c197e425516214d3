"""The DPoP replay cache on a real Redis: one accept per proof across instances,
hashed and prefixed keys with the proof window as TTL, and an outage failing closed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from joserfc.jwk import ECKey
from redis.asyncio import Redis
from tests.services import RedisServer
from tests.unit.dpop.proofs import URL, Client

from keyturn.clock import FrozenClock, SystemClock
from keyturn.dpop import DpopVerifier
from keyturn.dpop.redis import KEY_PREFIX, RedisReplayCache
from keyturn.errors import InvalidDpopProof, StoreUnavailable


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    """A redis.asyncio client on an empty logical database."""
    redis = Redis.from_url(redis_url, decode_responses=True)
    try:
        yield redis
    finally:
        await redis.aclose()


def proof_client() -> Client:
    return Client(ECKey.generate_key("P-256"), "ES256", FrozenClock(time.time()))


async def test_proof_replayed_on_another_instance_is_refused(client: Redis) -> None:
    """Two instances sharing Redis accept a proof once between them."""
    first = DpopVerifier(RedisReplayCache(client), SystemClock())
    second = DpopVerifier(RedisReplayCache(client), SystemClock())
    proof = proof_client().proof()

    await first.verify(proof, method="GET", url=URL)
    with pytest.raises(InvalidDpopProof) as caught:
        await second.verify(proof, method="GET", url=URL)
    assert caught.value.reason == "replayed"


async def test_concurrent_replays_are_accepted_exactly_once(client: Redis) -> None:
    """Of many instances racing with the same proof, exactly one accepts it (SET NX)."""
    verifiers = [DpopVerifier(RedisReplayCache(client), SystemClock()) for _ in range(8)]
    proof = proof_client().proof()
    results = await asyncio.gather(
        *(v.verify(proof, method="GET", url=URL) for v in verifiers), return_exceptions=True
    )
    accepted = [r for r in results if not isinstance(r, BaseException)]
    assert len(accepted) == 1
    assert all(isinstance(r, InvalidDpopProof) for r in results if r not in accepted)


async def test_keys_are_hashed_prefixed_and_expire_with_the_window(client: Redis) -> None:
    """Redis holds keyturn:dpop:jti:<sha256 hex> with a TTL of the proof window, and
    nothing the client wrote (not the jti, not the URL)."""
    verifier = DpopVerifier(RedisReplayCache(client), SystemClock())
    await verifier.verify(
        proof_client().proof(claims={"jti": "visible-jti"}), method="GET", url=URL
    )

    keys = [key async for key in client.scan_iter(match="*")]
    assert len(keys) == 1
    key = keys[0]
    assert key.startswith(KEY_PREFIX)
    assert len(key) == len(KEY_PREFIX) + 64
    assert "visible-jti" not in key and "example" not in key
    assert 60 < await client.ttl(key) <= verifier.replay_ttl
    assert await client.get(key) == "1"


async def test_redis_down_fails_closed(private_redis: RedisServer) -> None:
    """With Redis unreachable the proof is refused with StoreUnavailable, quickly."""
    cache = RedisReplayCache.from_url(private_redis.url, timeout=0.5)
    verifier = DpopVerifier(cache, SystemClock())
    try:
        await verifier.verify(proof_client().proof(), method="GET", url=URL)
        private_redis.stop()
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as caught:
            await verifier.verify(proof_client().proof(), method="GET", url=URL)
        assert time.monotonic() - started < 3
        assert "DPoP replay cache" in caught.value.detail
    finally:
        await cache.aclose()


async def test_custom_error_mapping_is_used(private_redis: RedisServer) -> None:
    """The shared connection's error mapping (server named, password masked) is applied."""
    redis = Redis.from_url(private_redis.url, socket_connect_timeout=0.5, socket_timeout=0.5)
    cache = RedisReplayCache(redis, unavailable=lambda exc: StoreUnavailable("mapped"))
    private_redis.stop()
    try:
        with pytest.raises(StoreUnavailable, match="mapped"):
            await cache.add("k", 10)
    finally:
        await redis.aclose()
