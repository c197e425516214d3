"""Published JOSE test vectors through keyturn's own signature path.

RFC 7515 appendix A.3 (ES256) and RFC 8037 appendix A.4 (Ed25519), copied from the
RFC text. Each goes through the same steps as :meth:`TokenVerifier.verify`: a
:class:`KeyRing` loads the stored key record once, ``verification_key`` hands out
the public key and its one algorithm, and :func:`verify_signature` checks the JWS.
The RFC examples have no ``typ``/``kid`` headers and non-token payloads, so the full
verifier must refuse them: that is checked too.
"""

from __future__ import annotations

import json

import pytest

from keyturn.clock import FrozenClock
from keyturn.errors import InvalidToken
from keyturn.keys.records import SigningKey, jws_algorithm, load_private_key
from keyturn.keys.ring import KeyRing
from keyturn.settings import Settings
from keyturn.tokens.access import TokenVerifier, verify_signature

NOW = 1_300_819_000.0  # before the RFC 7515 example's exp (1300819380)

#: RFC 7515 A.3.1: the ECDSA P-256 key (Figure 21).
RFC7515_A3_JWK = {
    "kty": "EC",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    "d": "jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI",
}
#: RFC 7515 A.3.1: the complete JWS Compact Serialization (line breaks removed).
RFC7515_A3_JWS = (
    "eyJhbGciOiJFUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFt"
    "cGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSA"
    "pmWQxfKTUJqPP3-Kg6NU1Q"
)
RFC7515_PAYLOAD = b'{"iss":"joe",\r\n "exp":1300819380,\r\n "http://example.com/is_root":true}'

#: RFC 8037 A.1: the Ed25519 key.
RFC8037_A1_JWK = {
    "kty": "OKP",
    "crv": "Ed25519",
    "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
}
#: RFC 8037 A.3: the RFC 7638 thumbprint of that key.
RFC8037_A3_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
#: RFC 8037 A.4: signing "Example of Ed25519 signing" with {"alg":"EdDSA"}.
RFC8037_A4_JWS = (
    "eyJhbGciOiJFZERTQSJ9"
    ".RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc"
    ".hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg"
)


def record_for(jwk: dict[str, str], alg: str) -> SigningKey:
    """A stored-key record for an RFC key, its kid computed as keyturn computes kids."""
    from joserfc.jwk import ECKey, OKPKey

    parameters: dict[str, str | list[str]] = dict(jwk)
    kid = (ECKey if jwk["kty"] == "EC" else OKPKey).import_key(parameters).thumbprint()
    return SigningKey(
        kid=kid,
        alg=alg,  # type: ignore[arg-type]
        private_key=json.dumps(jwk).encode(),
        public_jwk={},
        created_at=NOW,
    )


VECTORS = [
    pytest.param(RFC7515_A3_JWK, "ES256", RFC7515_A3_JWS, id="rfc7515-a3-es256"),
    pytest.param(RFC8037_A1_JWK, "EdDSA", RFC8037_A4_JWS, id="rfc8037-a4-ed25519"),
]


def ring_for(record: SigningKey) -> KeyRing:
    return KeyRing([record], now=NOW, access_token_ttl=900, clock_leeway=5)


@pytest.mark.parametrize(("jwk", "alg", "jws"), VECTORS)
def test_vector_verifies_through_the_keyring_path(jwk: dict[str, str], alg: str, jws: str) -> None:
    """The RFC JWS verifies with the ring-loaded public key and the key's algorithm."""
    record = record_for(jwk, alg)
    key = ring_for(record).verification_key(record.kid)
    assert key.alg == alg
    signing_input, _, signature = jws.rpartition(".")
    assert verify_signature(signing_input, signature, key)


@pytest.mark.parametrize(("jwk", "alg", "jws"), VECTORS)
def test_vector_fails_when_any_part_changes(jwk: dict[str, str], alg: str, jws: str) -> None:
    """Flipping one character of the header, payload or signature breaks the vector."""
    record = record_for(jwk, alg)
    key = ring_for(record).verification_key(record.kid)
    header, payload, signature = jws.split(".")
    flip = {"A": "B", "B": "A"}
    tampered = [
        (f"{header}.{payload[:-3]}{'x' if payload[-3] != 'x' else 'y'}{payload[-2:]}", signature),
        (f"{header[:-1]}{flip.get(header[-1], 'A')}.{payload}", signature),
        (
            f"{header}.{payload}",
            signature[:5] + ("A" if signature[5] != "A" else "B") + signature[6:],
        ),
    ]
    for signing_input, sig in tampered:
        assert not verify_signature(signing_input, sig, key)


def test_rfc7515_a3_payload_decodes_exactly() -> None:
    """The A.3 payload segment is the RFC's byte-exact claims text (CRLFs included)."""
    from joserfc.util import urlsafe_b64decode

    assert urlsafe_b64decode(RFC7515_A3_JWS.split(".")[1].encode()) == RFC7515_PAYLOAD


def test_rfc7515_a3_private_key_matches_its_public_point() -> None:
    """The A.3 private scalar loads and yields exactly the published x and y."""
    loaded = load_private_key(record_for(RFC7515_A3_JWK, "ES256"))
    public = loaded.as_dict(private=False)
    assert (public["x"], public["y"]) == (RFC7515_A3_JWK["x"], RFC7515_A3_JWK["y"])


def test_rfc8037_a4_signature_is_reproduced_by_our_signing_path() -> None:
    """Ed25519 is deterministic: signing the A.4 input with the A.1 key through the
    algorithm keyturn signs with gives the RFC's signature byte for byte."""
    record = record_for(RFC8037_A1_JWK, "EdDSA")
    assert record.kid == RFC8037_A3_THUMBPRINT
    signing_input, _, expected = RFC8037_A4_JWS.rpartition(".")
    signature = jws_algorithm("EdDSA").sign(signing_input.encode(), load_private_key(record))
    from joserfc.util import urlsafe_b64encode

    assert urlsafe_b64encode(signature).decode() == expected


@pytest.mark.parametrize(("jwk", "alg", "jws"), VECTORS)
def test_full_verifier_refuses_the_untyped_rfc_examples(
    jwk: dict[str, str], alg: str, jws: str
) -> None:
    """Correctly signed but lacking typ at+jwt and kid, the RFC examples are not
    access tokens: the verifier raises InvalidToken."""
    verifier = TokenVerifier(
        ring_for(record_for(jwk, alg)),
        Settings(issuer="https://joe.example"),
        FrozenClock(NOW),
        cache_entries=0,
    )
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(jws)
    assert caught.value.reason == "typ"
