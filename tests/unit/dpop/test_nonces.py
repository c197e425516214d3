"""Server nonces (RFC 9449 sections 8 and 9): demanded, rotated, shared by every
instance with the secret, and never accepted when missing, stale or forged."""

from __future__ import annotations

import pytest
from tests.unit.dpop.proofs import NONCE_SECRET, URL, Client

from keyturn.clock import FrozenClock
from keyturn.dpop import DpopNonces, DpopVerifier, MemoryReplayCache
from keyturn.errors import NotAuthenticated, UseDpopNonce


async def nonce_demanded(verifier: DpopVerifier, proof: str) -> UseDpopNonce:
    """Verify ``proof``; the server must answer use_dpop_nonce."""
    with pytest.raises(UseDpopNonce) as caught:
        await verifier.verify(proof, method="GET", url=URL)
    assert caught.value.code == "use_dpop_nonce"
    return caught.value


async def test_proof_without_nonce_gets_the_current_nonce(
    es256: Client, nonce_verifier: DpopVerifier, nonces: DpopNonces
) -> None:
    """A proof without a nonce is answered with use_dpop_nonce and the nonce to use."""
    error = await nonce_demanded(nonce_verifier, es256.proof())
    assert error.nonce == nonces.current()
    assert error.reason == "nonce_missing"


async def test_retry_with_the_supplied_nonce_is_accepted(
    es256: Client, nonce_verifier: DpopVerifier
) -> None:
    """The client's retry with the nonce from the error passes, with nothing to refresh."""
    error = await nonce_demanded(nonce_verifier, es256.proof())
    verified = await nonce_verifier.verify(es256.proof(nonce=error.nonce), method="GET", url=URL)
    assert verified.nonce == error.nonce
    assert verified.fresh_nonce is None


async def test_nonce_of_the_previous_window_is_accepted_with_a_fresh_one(
    es256: Client, nonce_verifier: DpopVerifier, nonces: DpopNonces, clock: FrozenClock
) -> None:
    """Across a window change the old nonce still works and the answer carries the new one."""
    old = nonces.current()
    clock.advance(nonces.window)
    verified = await nonce_verifier.verify(es256.proof(nonce=old), method="GET", url=URL)
    assert verified.fresh_nonce == nonces.current() != old


async def test_stale_nonce_is_refused_with_a_fresh_one(
    es256: Client, nonce_verifier: DpopVerifier, nonces: DpopNonces, clock: FrozenClock
) -> None:
    """A nonce two windows old is refused; the error carries the current nonce."""
    old = nonces.current()
    clock.advance(2 * nonces.window)
    error = await nonce_demanded(nonce_verifier, es256.proof(nonce=old))
    assert (error.reason, error.nonce) == ("nonce_invalid", nonces.current())


@pytest.mark.parametrize("forged", ["A" * 43, "nonce", "x" * 500])
async def test_forged_nonce_is_refused(
    forged: str, es256: Client, nonce_verifier: DpopVerifier
) -> None:
    """A nonce the server did not make is refused."""
    error = await nonce_demanded(nonce_verifier, es256.proof(nonce=forged))
    assert error.reason == "nonce_invalid"


async def test_nonce_made_with_another_secret_is_refused(
    es256: Client, nonce_verifier: DpopVerifier, clock: FrozenClock
) -> None:
    """A nonce from a server with another secret is not ours."""
    foreign = DpopNonces(b"f" * 32, clock).current()
    await nonce_demanded(nonce_verifier, es256.proof(nonce=foreign))


async def test_nonce_from_another_instance_with_the_secret_is_accepted(
    es256: Client, nonce_verifier: DpopVerifier, clock: FrozenClock
) -> None:
    """Instances share nothing but the secret, and accept each other's nonces."""
    other_instance = DpopNonces(NONCE_SECRET, clock)
    proof = es256.proof(nonce=other_instance.current())
    assert (await nonce_verifier.verify(proof, method="GET", url=URL)).jkt == es256.jkt


def test_rotated_secret_still_accepts_nonces_of_the_old_one(clock: FrozenClock) -> None:
    """After adding a new secret, nonces handed out under the old one keep working."""
    old = DpopNonces(NONCE_SECRET, clock)
    rotated = DpopNonces([NONCE_SECRET, b"r" * 32], clock)
    assert rotated.check(old.current()) == "current"
    assert rotated.current() != old.current()
    assert old.check(rotated.current()) == "invalid"


async def test_nonce_can_be_waived_per_call(es256: Client, nonce_verifier: DpopVerifier) -> None:
    """require_nonce=False lets one endpoint skip the nonce the others demand."""
    proof = es256.proof()
    verified = await nonce_verifier.verify(proof, method="GET", url=URL, require_nonce=False)
    assert verified.nonce is None


async def test_nonce_demanded_before_the_proof_is_recorded(
    es256: Client, nonce_verifier: DpopVerifier, cache: MemoryReplayCache
) -> None:
    """A proof refused for its nonce takes no replay-cache entry."""
    await nonce_demanded(nonce_verifier, es256.proof())
    assert len(cache) == 0


def test_short_secret_is_refused(clock: FrozenClock) -> None:
    """Nonce secrets shorter than 32 bytes are a configuration error."""
    with pytest.raises(ValueError, match="32 bytes"):
        DpopNonces(b"short", clock)


def test_repr_hides_the_secret(nonces: DpopNonces) -> None:
    """The secret never appears in repr (logs, tracebacks)."""
    assert "nnnn" not in repr(nonces)


def test_nonce_is_header_safe(nonces: DpopNonces) -> None:
    """A nonce is base64url (RFC 9449 NQCHAR), fit for the DPoP-Nonce header."""
    nonce = nonces.current()
    assert len(nonce) == 43
    assert nonce.replace("-", "").replace("_", "").isalnum()


def test_use_dpop_nonce_is_an_authentication_failure() -> None:
    """UseDpopNonce maps to 401 (400 at the token endpoint) and carries its nonce."""
    assert issubclass(UseDpopNonce, NotAuthenticated)
    assert UseDpopNonce("abc").nonce == "abc"
