"""The header cache of the proof hot path (issue #16, item 4): a header's outcome is
reused only for the very same header segment, never for another header or key,
and never in place of the signature, size, claim or allow-list checks; it is bounded."""

from __future__ import annotations

import base64
import json

import pytest
from joserfc import jws
from joserfc.jwk import ECKey
from tests.unit.dpop.proofs import URL, Client

from keyturn.clock import FrozenClock
from keyturn.dpop import DpopVerifier, MemoryReplayCache
from keyturn.dpop.header import HeaderCache, ProofKey
from keyturn.errors import InvalidDpopProof


async def reason(verifier: DpopVerifier, proof: str) -> str:
    """Verify ``proof`` for GET URL; it must be refused. Returns the reason."""
    with pytest.raises(InvalidDpopProof) as caught:
        await verifier.verify(proof, method="GET", url=URL)
    return caught.value.reason


def segments(proof: str) -> list[str]:
    return proof.split(".")


async def test_another_header_does_not_reuse_a_cached_key(
    es256: Client, verifier: DpopVerifier, clock: FrozenClock
) -> None:
    """Two clients' headers are two entries: each proof yields its own key's thumbprint."""
    other = Client(ECKey.generate_key("P-256"), "ES256", clock)
    first = await verifier.verify(es256.proof(), method="GET", url=URL)
    second = await verifier.verify(other.proof(), method="GET", url=URL)
    again = await verifier.verify(es256.proof(), method="GET", url=URL)
    assert (first.jkt, second.jkt, again.jkt) == (es256.jkt, other.jkt, es256.jkt)
    assert other.jkt != es256.jkt


async def test_cached_header_with_a_bad_signature_is_refused(
    es256: Client, verifier: DpopVerifier
) -> None:
    """Once a header is cached, a proof with it still needs a valid signature of its key."""
    await verifier.verify(es256.proof(), method="GET", url=URL)  # the header is now cached
    header, payload, _ = segments(es256.proof())
    forged = es256.proof(sign_with=ECKey.generate_key("P-256"))
    assert segments(forged)[0] == header  # same header bytes, signed by another key
    assert await reason(verifier, forged) == "signature"
    tampered_payload = segments(es256.proof(claims={"jti": "other"}))[1]
    signature = segments(es256.proof())[2]
    assert await reason(verifier, f"{header}.{tampered_payload}.{signature}") == "signature"
    assert await reason(verifier, f"{header}.{payload}.{signature[:-8]}") == "signature"
    assert await reason(verifier, f"{header}.{payload}.{signature}A") == "signature"


async def test_cached_header_still_meets_size_and_decoding_limits(
    es256: Client, verifier: DpopVerifier
) -> None:
    """A known header skips nothing of joserfc's parse of the rest: an undecodable
    payload and an oversized signature are malformed, as with a new header."""
    proof = es256.proof()
    await verifier.verify(proof, method="GET", url=URL)
    header, payload, signature = segments(es256.proof())
    assert await reason(verifier, f"{header}.{payload}A.{signature}") == "malformed"
    assert await reason(verifier, f"{header}.{payload}.{'A' * 1100}") == "malformed"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_with_spaces(client: Client) -> str:
    """A valid proof of ``client`` whose header is the usual JSON with spaces after
    the separators: the same header as a value, another segment as bytes."""
    header = json.dumps({"typ": "dpop+jwt", "alg": client.alg, "jwk": client.jwk})
    claims = {"jti": "spaced", "htm": "GET", "htu": URL, "iat": int(client.clock.now())}
    signing_input = f"{b64(header.encode())}.{b64(json.dumps(claims).encode())}"
    algorithm = jws.JWSRegistry(algorithms=[client.alg]).get_alg(client.alg)
    return f"{signing_input}.{b64(algorithm.sign(signing_input.encode(), client.key))}"


async def test_same_header_in_another_encoding_is_checked_on_its_own(
    es256: Client, verifier: DpopVerifier
) -> None:
    """The cache key is the segment as received: the same header encoded with other
    spacing is another entry, checked in full and accepted on its own merits."""
    await verifier.verify(es256.proof(), method="GET", url=URL)
    spaced = signed_with_spaces(es256)
    assert segments(spaced)[0] != segments(es256.proof())[0]
    verified = await verifier.verify(spaced, method="GET", url=URL)
    assert (verified.jkt, verified.jti) == (es256.jkt, "spaced")
    forged = f"{segments(spaced)[0]}.{segments(spaced)[1]}.{segments(es256.proof())[2]}"
    assert await reason(verifier, forged) == "signature"


async def test_cached_header_is_refused_by_a_narrower_allow_list(
    es256: Client, cache: MemoryReplayCache, clock: FrozenClock, verifier: DpopVerifier
) -> None:
    """A header accepted by one verifier is still refused by one that does not allow its alg."""
    await verifier.verify(es256.proof(), method="GET", url=URL)
    only_eddsa = DpopVerifier(cache, clock, algorithms=["EdDSA"])
    assert await reason(only_eddsa, es256.proof()) == "alg"


async def test_refused_header_is_refused_again(es256: Client, verifier: DpopVerifier) -> None:
    """A failing header is never cached: the same header fails the same way each time."""
    bad = {"typ": "JWT"}
    assert await reason(verifier, es256.proof(header=bad)) == "typ"
    assert await reason(verifier, es256.proof(header=bad)) == "typ"


def test_cache_is_bounded_and_drops_the_least_recently_used(es256: Client) -> None:
    """At max_entries, adding a header drops the one used longest ago."""
    cache = HeaderCache(max_entries=2)
    key = ProofKey(alg="ES256", jkt=es256.jkt, verify=lambda message, signature: False)
    cache.put(b"a", key)
    cache.put(b"b", key)
    assert cache.get(b"a") is key  # "a" is now the most recently used
    cache.put(b"c", key)
    assert len(cache) == 2
    assert cache.get(b"b") is None
    assert (cache.get(b"a"), cache.get(b"c")) == (key, key)


def test_cache_needs_room_for_one_header() -> None:
    """A cache that can hold nothing is a configuration error."""
    with pytest.raises(ValueError, match="max_entries"):
        HeaderCache(max_entries=0)
