"""Fixtures of the DPoP unit tests: a frozen clock, a verifier with a memory replay
cache, server nonces, and client keys (see ``proofs.py``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey
from tests.unit.dpop.proofs import NONCE_SECRET, T0, Client

from keyturn.clock import FrozenClock
from keyturn.dpop import DpopNonces, DpopVerifier, MemoryReplayCache


@pytest.fixture(scope="session")
def rsa_key() -> RSAKey:
    """One RSA-2048 key for the session (generation is slow)."""
    return RSAKey.generate_key(2048)


@pytest.fixture
def clock() -> FrozenClock:
    """Time, frozen at T0."""
    return FrozenClock(T0)


@pytest.fixture
def cache(clock: FrozenClock) -> MemoryReplayCache:
    """The in-process replay cache."""
    return MemoryReplayCache(clock)


@pytest.fixture
def verifier(cache: MemoryReplayCache, clock: FrozenClock) -> DpopVerifier:
    """A verifier with the defaults: 60 s max age, 5 s skew, no nonces."""
    return DpopVerifier(cache, clock)


@pytest.fixture
def nonces(clock: FrozenClock) -> DpopNonces:
    """Server nonces with a 300 s window."""
    return DpopNonces(NONCE_SECRET, clock)


@pytest.fixture
def nonce_verifier(
    cache: MemoryReplayCache, clock: FrozenClock, nonces: DpopNonces
) -> DpopVerifier:
    """A verifier that demands the server's nonce."""
    return DpopVerifier(cache, clock, nonces=nonces)


@pytest.fixture
def es256(clock: FrozenClock) -> Client:
    """A client with a P-256 key."""
    return Client(ECKey.generate_key("P-256"), "ES256", clock)


@pytest.fixture
def eddsa(clock: FrozenClock) -> Client:
    """A client with an Ed25519 key."""
    return Client(OKPKey.generate_key("Ed25519"), "EdDSA", clock)


@pytest.fixture
def rs256(clock: FrozenClock, rsa_key: RSAKey) -> Client:
    """A client with an RSA-2048 key."""
    return Client(rsa_key, "RS256", clock)


@pytest.fixture
def make_client(clock: FrozenClock) -> Callable[[Key, str], Client]:
    """Builds a client for any key and algorithm."""
    return lambda key, alg: Client(key, alg, clock)
