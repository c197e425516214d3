"""The direct ``cryptography`` signature check of the proof hot path answers exactly
as joserfc's own ``alg.verify`` for every supported algorithm: True for a valid
signature, False for a wrong message, key or length, and joserfc's own refusal
for a key it would not verify with."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, Key, OKPKey, RSAKey
from tests.unit.dpop.proofs import URL, Client

from keyturn.dpop import DpopVerifier
from keyturn.dpop.signature import signature_check
from keyturn.errors import InvalidDpopProof

MESSAGE = b"eyJhbGciOiJFUzI1NiJ9.eyJqdGkiOiJ4In0"

#: Each supported algorithm with a key generator for it.
KEYS: dict[str, Callable[[], Key]] = {
    "ES256": lambda: ECKey.generate_key("P-256"),
    "ES384": lambda: ECKey.generate_key("P-384"),
    "ES512": lambda: ECKey.generate_key("P-521"),
    "RS256": lambda: RSAKey.generate_key(2048),
    "PS256": lambda: RSAKey.generate_key(2048),
    "EdDSA": lambda: OKPKey.generate_key("Ed25519"),
    "Ed25519": lambda: OKPKey.generate_key("Ed25519"),
}


def public(key: Key) -> Key:
    """The public half of ``key``, as a proof header's jwk is imported."""
    return JWKRegistry.import_key(dict(key.as_dict(private=False)))


@pytest.mark.parametrize("alg", sorted(KEYS))
def test_direct_check_answers_as_joserfc_does(alg: str) -> None:
    """Valid, tampered, truncated, padded and foreign signatures get joserfc's answer."""
    algorithm = jws.JWSRegistry(algorithms=[alg]).get_alg(alg)
    key, stranger = KEYS[alg](), KEYS[alg]()
    verifying = public(key)
    check = signature_check(algorithm, verifying)
    signature = algorithm.sign(MESSAGE, key)
    cases = [
        (MESSAGE, signature),
        (MESSAGE + b"x", signature),
        (MESSAGE, signature[:-1]),
        (MESSAGE, signature + b"\0"),
        (MESSAGE, bytes(len(signature))),
        (MESSAGE, algorithm.sign(MESSAGE, stranger)),
        (MESSAGE, b""),
    ]
    expected = [algorithm.verify(message, sig, verifying) for message, sig in cases]
    assert [check(message, sig) for message, sig in cases] == expected
    assert expected[0] is True
    assert not any(expected[1:])


def test_key_that_forbids_verify_is_refused_by_joserfc() -> None:
    """A jwk whose key_ops leave out "verify" is not given the direct check: joserfc
    refuses it, as it did before the hot path."""
    algorithm = jws.JWSRegistry(algorithms=["ES256"]).get_alg("ES256")
    key = ECKey.generate_key("P-256")
    restricted = JWKRegistry.import_key({**key.as_dict(private=False), "key_ops": ["sign"]})
    check = signature_check(algorithm, restricted)
    with pytest.raises(JoseError):
        algorithm.verify(MESSAGE, algorithm.sign(MESSAGE, key), restricted)
    with pytest.raises(JoseError):
        check(MESSAGE, algorithm.sign(MESSAGE, key))


async def test_proof_whose_jwk_forbids_verify_is_refused(
    es256: Client, verifier: DpopVerifier
) -> None:
    """A proof whose jwk says it may only sign is refused as unfit for its alg."""
    proof = es256.proof(header={"jwk": {**es256.jwk, "key_ops": ["sign"]}})
    with pytest.raises(InvalidDpopProof) as caught:
        await verifier.verify(proof, method="GET", url=URL)
    assert caught.value.reason == "key_alg_mismatch"
