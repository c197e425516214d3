"""KeyRing.from_jwks: a verify-only ring from a published JWK Set."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jws
from joserfc.jwk import ECKey, OctKey, RSAKey

from keyturn.clock import FrozenClock
from keyturn.errors import ConfigurationError, InvalidToken
from keyturn.keys.records import generate_key
from keyturn.keys.ring import KeyRing
from keyturn.settings import Settings
from keyturn.tokens.access import TokenIssuer, TokenVerifier

NOW = 1_800_000_000.0
SETTINGS = Settings(issuer="https://auth.example.com")


def published(*algs: str) -> tuple[KeyRing, dict[str, Any]]:
    """An issuer's full ring and the JWKS it publishes."""
    ring = KeyRing.from_settings(
        [generate_key(alg, now=NOW - i) for i, alg in enumerate(algs)],  # type: ignore[arg-type]
        SETTINGS,
        now=NOW,
    )
    return ring, ring.jwks()


def test_tokens_verify_with_a_ring_built_from_the_jwks() -> None:
    """A token signed by the issuer verifies against a ring holding only public JWKs."""
    issuer_ring, jwks = published("ES256", "EdDSA", "RS256")
    clock = FrozenClock(NOW)
    token, claims = TokenIssuer(issuer_ring, SETTINGS, clock).issue("u", sid="s")
    downstream = KeyRing.from_jwks(jwks)
    assert TokenVerifier(downstream, SETTINGS, clock).verify(token) == claims
    assert len(downstream.keys) == 3


def test_jwks_ring_cannot_sign() -> None:
    """A ring of public keys has no signing key."""
    _, jwks = published("ES256")
    with pytest.raises(ConfigurationError):
        _ = KeyRing.from_jwks(jwks).signing_key


def test_alg_is_pinned_from_the_jwk() -> None:
    """The JWK's alg is the only one the key accepts."""
    _, jwks = published("EdDSA")
    ring = KeyRing.from_jwks(jwks)
    (key,) = ring.keys
    assert ring.verification_key(key.kid).alg == "EdDSA"


def mutate(jwks: dict[str, Any], **changes: Any) -> dict[str, Any]:
    (jwk,) = jwks["keys"]
    updated = {**jwk, **changes}
    return {"keys": [{k: v for k, v in updated.items() if v is not None}]}


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"alg": None}, "alg"),
        ({"alg": "HS256"}, "alg"),
        ({"alg": "none"}, "alg"),
        ({"alg": "RS256"}, "valid"),
        ({"kid": None}, "kid"),
        ({"kid": ""}, "kid"),
        ({"use": "enc"}, "signature"),
        ({"d": "AAAA"}, "private"),
        ({"crv": "P-384"}, "valid"),
    ],
)
def test_unsafe_or_incomplete_jwks_are_refused(changes: dict[str, Any], why: str) -> None:
    """JWKs without alg or kid, with a symmetric or mismatched alg, for encryption,
    or with private members are refused."""
    _, jwks = published("ES256")
    with pytest.raises(ConfigurationError) as caught:
        KeyRing.from_jwks(mutate(jwks, **changes))
    assert why in caught.value.detail


def test_oct_keys_are_refused() -> None:
    """A symmetric JWK (kty oct) is never accepted as a verification key."""
    oct_jwk = {**OctKey.generate_key(256).as_dict(private=False), "kid": "k", "alg": "ES256"}
    with pytest.raises(ConfigurationError):
        KeyRing.from_jwks({"keys": [oct_jwk]})


@pytest.mark.filterwarnings("ignore:Key size should be >= 2048 bits")
def test_small_rsa_keys_are_refused() -> None:
    """An RSA JWK under 2048 bits is refused."""
    weak = rsa.generate_private_key(65537, 1024)  # noqa: S505 - the point of the test
    small = RSAKey.import_key(weak).as_dict(private=False)
    with pytest.raises(ConfigurationError):
        KeyRing.from_jwks({"keys": [{**small, "kid": "k", "alg": "RS256"}]})


@pytest.mark.parametrize("bad", [{}, {"keys": "x"}, {"keys": ["x"]}, []])
def test_malformed_sets_are_refused(bad: Any) -> None:
    """Something that is not {"keys": [objects]} is refused."""
    with pytest.raises(ConfigurationError):
        KeyRing.from_jwks(bad)


def test_duplicate_kids_are_refused() -> None:
    """Two JWKs with one kid would make selection ambiguous: refused."""
    _, jwks = published("ES256")
    with pytest.raises(ConfigurationError):
        KeyRing.from_jwks({"keys": jwks["keys"] * 2})


def test_attacker_key_under_a_published_kid_fails() -> None:
    """A token signed with another key but naming the published kid is refused."""
    issuer_ring, jwks = published("ES256")
    downstream = KeyRing.from_jwks(jwks)
    kid = issuer_ring.signing_key.kid
    attacker = ECKey.generate_key("P-256")
    token = jws.serialize_compact(
        {"typ": "at+jwt", "alg": "ES256", "kid": kid}, b'{"sub":"x"}', attacker
    )
    with pytest.raises(InvalidToken) as caught:
        TokenVerifier(downstream, SETTINGS, FrozenClock(NOW)).verify(token)
    assert caught.value.reason == "signature"
