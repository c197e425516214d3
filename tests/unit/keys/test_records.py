"""Signing keys: generation, kid thumbprints, encryption at rest, the key ring."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import RSAKey
from pydantic import SecretStr

from keyturn.errors import ConfigurationError
from keyturn.keys.encryption import KeyEncryptor, generate_kek
from keyturn.keys.records import (
    ALGORITHMS,
    PRIVATE_JWK_MEMBERS,
    SigningKey,
    generate_key,
    load_private_key,
)
from keyturn.keys.ring import KeyRing
from keyturn.settings import Settings, SigningAlgorithm

NOW = 1_800_000_000.0
TTL = 900
LEEWAY = 5

#: RFC 8037 appendix A.1 (private key) and A.3 (its RFC 7638 thumbprint).
RFC8037_PRIVATE_JWK = {
    "kty": "OKP",
    "crv": "Ed25519",
    "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
    "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo",
}
RFC8037_THUMBPRINT = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"

#: RFC 7638 section 3.2: the members that enter the thumbprint, per key type.
THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "RSA": ("e", "kty", "n"),
    "oct": ("k", "kty"),
}


@pytest.fixture(scope="module")
def keys() -> dict[SigningAlgorithm, SigningKey]:
    """One fresh key per algorithm (RSA generation is slow: shared by the module)."""
    return {alg: generate_key(alg, now=NOW) for alg in ALGORITHMS}


def rfc7638_thumbprint(jwk: dict[str, str]) -> str:
    """An independent RFC 7638 computation: SHA-256 of the sorted required members."""
    members = {name: jwk[name] for name in THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def ring(*records: SigningKey, now: float = NOW) -> KeyRing:
    return KeyRing(records, now=now, access_token_ttl=TTL, clock_leeway=LEEWAY)


# --- generation and kid ---------------------------------------------------------


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_kid_is_the_rfc7638_thumbprint(keys: dict[SigningAlgorithm, SigningKey], alg: str) -> None:
    """Every generated key's kid equals an independently computed RFC 7638 thumbprint."""
    key = keys[alg]  # type: ignore[index]
    assert key.kid == rfc7638_thumbprint(json.loads(key.private_key))
    assert key.alg == alg
    assert key.created_at == NOW and key.retired_at is None


def test_kid_matches_the_rfc8037_thumbprint_vector() -> None:
    """The RFC 8037 A.1 key gets the kid RFC 8037 A.3 computes for it."""
    record = SigningKey(
        kid=RFC8037_THUMBPRINT,
        alg="EdDSA",
        private_key=json.dumps(RFC8037_PRIVATE_JWK).encode(),
        public_jwk={},
        created_at=NOW,
    )
    assert load_private_key(record).thumbprint() == RFC8037_THUMBPRINT
    assert rfc7638_thumbprint(RFC8037_PRIVATE_JWK) == RFC8037_THUMBPRINT


def test_kids_are_unique() -> None:
    """Two keys of the same algorithm never share a kid."""
    kids = {generate_key("ES256", now=NOW).kid for _ in range(20)}
    assert len(kids) == 20


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "RS256"])
def test_public_jwk_has_no_private_members(
    keys: dict[SigningAlgorithm, SigningKey], alg: str
) -> None:
    """The public JWK of an asymmetric key holds only public members plus kid/alg/use."""
    key = keys[alg]  # type: ignore[index]
    assert not PRIVATE_JWK_MEMBERS & key.public_jwk.keys()
    assert key.public_jwk["kid"] == key.kid
    assert key.public_jwk["alg"] == alg
    assert key.public_jwk["use"] == "sig"


def test_hmac_key_is_32_random_bytes_and_has_no_public_form(
    keys: dict[SigningAlgorithm, SigningKey],
) -> None:
    """An HS256 key is a 256-bit secret with an empty public JWK."""
    key = keys["HS256"]
    secret = base64.urlsafe_b64decode(json.loads(key.private_key)["k"] + "==")
    assert len(secret) == 32
    assert key.public_jwk == {}
    assert key.is_symmetric


def test_repr_never_shows_private_material(keys: dict[SigningAlgorithm, SigningKey]) -> None:
    """repr() of a key record leaves the private key out."""
    for key in keys.values():
        private = json.loads(key.private_key)
        secret = private.get("d") or private.get("k")
        assert secret not in repr(key)
        assert "private_key" not in repr(key)


def test_retire_keeps_the_earliest_time(keys: dict[SigningAlgorithm, SigningKey]) -> None:
    """Retiring twice keeps the first retirement time."""
    key = keys["ES256"].retire(NOW + 10)
    assert key.retired_at == NOW + 10
    assert key.retire(NOW + 50).retired_at == NOW + 10


def test_unknown_algorithm_is_refused() -> None:
    """generate_key refuses an algorithm keyturn does not sign with."""
    with pytest.raises(ConfigurationError):
        generate_key("HS512", now=NOW)  # type: ignore[arg-type]


# --- loading stored records -------------------------------------------------------


def test_swapped_kid_is_refused(keys: dict[SigningAlgorithm, SigningKey]) -> None:
    """A record whose material does not hash to its kid is refused."""
    swapped = replace(keys["ES256"], kid=keys["EdDSA"].kid)
    with pytest.raises(ConfigurationError, match="does not match its kid"):
        load_private_key(swapped)


def test_material_of_the_wrong_type_is_refused(keys: dict[SigningAlgorithm, SigningKey]) -> None:
    """An ES256 record holding an Ed25519 key cannot be loaded."""
    wrong = replace(keys["ES256"], private_key=keys["EdDSA"].private_key, kid=keys["EdDSA"].kid)
    with pytest.raises(ConfigurationError):
        load_private_key(wrong)


def test_short_hmac_key_is_refused() -> None:
    """A 16-byte HMAC secret is too weak to load (SEC-50)."""
    jwk = {"kty": "oct", "k": base64.urlsafe_b64encode(b"x" * 16).rstrip(b"=").decode()}
    record = SigningKey(
        kid=rfc7638_thumbprint(jwk),
        alg="HS256",
        private_key=json.dumps(jwk).encode(),
        public_jwk={},
        created_at=NOW,
    )
    with pytest.raises(ConfigurationError, match="32 bytes"):
        load_private_key(record)


@pytest.mark.filterwarnings("ignore:Key size should be")
def test_small_rsa_key_is_refused() -> None:
    """A 1024-bit RSA key is too weak to load (SEC-50)."""
    jose_key = RSAKey.import_key(rsa.generate_private_key(65537, 1024))  # noqa: S505
    record = SigningKey(
        kid=jose_key.thumbprint(),
        alg="RS256",
        private_key=json.dumps(jose_key.as_dict(private=True)).encode(),
        public_jwk={},
        created_at=NOW,
    )
    with pytest.raises(ConfigurationError, match="2048"):
        load_private_key(record)


def test_public_only_material_is_refused(keys: dict[SigningAlgorithm, SigningKey]) -> None:
    """A record carrying only the public key cannot sign, so it is refused."""
    key = keys["ES256"]
    public = {k: v for k, v in key.public_jwk.items() if k in ("kty", "crv", "x", "y")}
    with pytest.raises(ConfigurationError):
        load_private_key(replace(key, private_key=json.dumps(public).encode()))


def test_garbage_material_is_refused(keys: dict[SigningAlgorithm, SigningKey]) -> None:
    """Unparseable private key bytes are a configuration error, not a crash."""
    with pytest.raises(ConfigurationError, match="unreadable"):
        load_private_key(replace(keys["ES256"], private_key=b"\xff not json"))


# --- encryption at rest -----------------------------------------------------------


def test_generated_kek_is_32_bytes_of_base64url() -> None:
    """generate_kek returns unpadded base64url of 32 random bytes, different each time."""
    text = generate_kek()
    assert len(text) == 43 and "=" not in text
    assert len(base64.urlsafe_b64decode(text + "=")) == 32
    assert generate_kek() != text


def test_kek_round_trip(keys: dict[SigningAlgorithm, SigningKey]) -> None:
    """Sealed private key bytes open again with the same KEK and kid."""
    encryptor = KeyEncryptor.from_text(generate_kek())
    key = keys["ES256"]
    sealed = encryptor.encrypt(key.kid, key.private_key)
    assert key.private_key not in sealed
    assert encryptor.decrypt(key.kid, sealed) == key.private_key
    assert encryptor.unseal(encryptor.seal(key)) == key


def test_sealing_uses_a_fresh_nonce(keys: dict[SigningAlgorithm, SigningKey]) -> None:
    """Encrypting the same key twice gives different ciphertexts."""
    encryptor = KeyEncryptor.from_text(generate_kek())
    key = keys["HS256"]
    assert encryptor.encrypt(key.kid, key.private_key) != encryptor.encrypt(
        key.kid, key.private_key
    )


def test_wrong_kek_cannot_decrypt(keys: dict[SigningAlgorithm, SigningKey]) -> None:
    """Material sealed under one KEK does not open under another."""
    key = keys["ES256"]
    sealed = KeyEncryptor.from_text(generate_kek()).encrypt(key.kid, key.private_key)
    with pytest.raises(ConfigurationError, match="cannot be decrypted"):
        KeyEncryptor.from_text(generate_kek()).decrypt(key.kid, sealed)


def test_wrong_kid_cannot_decrypt(keys: dict[SigningAlgorithm, SigningKey]) -> None:
    """The kid is bound as associated data: a blob moved to another key's row fails."""
    encryptor = KeyEncryptor.from_text(generate_kek())
    key = keys["ES256"]
    sealed = encryptor.encrypt(key.kid, key.private_key)
    with pytest.raises(ConfigurationError):
        encryptor.decrypt(keys["EdDSA"].kid, sealed)


def test_tampered_or_truncated_blob_cannot_decrypt(
    keys: dict[SigningAlgorithm, SigningKey],
) -> None:
    """Flipping a bit or cutting the blob short is detected."""
    encryptor = KeyEncryptor.from_text(generate_kek())
    key = keys["ES256"]
    sealed = bytearray(encryptor.encrypt(key.kid, key.private_key))
    sealed[-1] ^= 1
    for blob in (bytes(sealed), bytes(sealed[:20]), b""):
        with pytest.raises(ConfigurationError):
            encryptor.decrypt(key.kid, blob)


def test_kek_comes_from_settings() -> None:
    """KeyEncryptor.from_settings reads the SecretStr setting and refuses its absence."""
    text = generate_kek()
    settings = Settings(key_encryption_key=SecretStr(text))
    sealed = KeyEncryptor.from_settings(settings).encrypt("kid", b"secret")
    assert KeyEncryptor.from_text(text).decrypt("kid", sealed) == b"secret"
    with pytest.raises(ConfigurationError, match="key-encryption-key"):
        KeyEncryptor.from_settings(Settings())


@pytest.mark.parametrize("text", ["", "short", "!!!!", base64.b64encode(b"x" * 31).decode()])
def test_malformed_kek_is_refused(text: str) -> None:
    """A KEK that is not base64url of exactly 32 bytes is a configuration error."""
    with pytest.raises(ConfigurationError):
        KeyEncryptor.from_text(text)


def test_encryptor_repr_hides_the_kek() -> None:
    """repr() of an encryptor shows no key material."""
    assert repr(KeyEncryptor(b"k" * 32)) == "KeyEncryptor(<secret>)"


# --- the ring ---------------------------------------------------------------------


def test_newest_unretired_key_signs(keys: dict[SigningAlgorithm, SigningKey]) -> None:
    """The signing key is the newest one that is not retired."""
    old = replace(keys["EdDSA"], created_at=NOW - 100)
    newest_retired = replace(keys["RS256"], created_at=NOW, retired_at=NOW)
    current = replace(keys["ES256"], created_at=NOW - 10)
    assert ring(old, newest_retired, current).signing_key.kid == current.kid


def test_ring_without_active_key_cannot_sign(keys: dict[SigningAlgorithm, SigningKey]) -> None:
    """A ring of retired keys still verifies but refuses to sign."""
    retired = ring(keys["ES256"].retire(NOW))
    assert retired.verification_key(keys["ES256"].kid).alg == "ES256"
    with pytest.raises(ConfigurationError, match="no active signing key"):
        retired.signing_key  # noqa: B018


def test_duplicate_kid_is_refused(keys: dict[SigningAlgorithm, SigningKey]) -> None:
    """Two records with one kid make an invalid ring."""
    with pytest.raises(ConfigurationError, match="duplicate"):
        ring(keys["ES256"], keys["ES256"].retire(NOW))


def test_retired_key_verifies_for_ttl_plus_leeway(
    keys: dict[SigningAlgorithm, SigningKey],
) -> None:
    """A retired key verifies until access_token_ttl + leeway after retirement."""
    old = keys["EdDSA"].retire(NOW)
    keyring = ring(old, keys["ES256"])
    end = NOW + TTL + LEEWAY
    assert keyring.verification_key(old.kid, now=end - 1).alg == "EdDSA"
    with pytest.raises(KeyError):
        keyring.verification_key(old.kid, now=end)
    later = ring(old, keys["ES256"], now=end)
    assert [key.kid for key in later.keys] == [keys["ES256"].kid]
    with pytest.raises(KeyError):
        later.verification_key(old.kid)


def test_verification_key_is_loaded_once(keys: dict[SigningAlgorithm, SigningKey]) -> None:
    """Lookups return the same pre-loaded public key object: nothing is parsed per call."""
    keyring = ring(keys["ES256"])
    first = keyring.verification_key(keys["ES256"].kid)
    assert keyring.verification_key(keys["ES256"].kid).key is first.key
    assert not first.key.is_private


def test_unknown_kid_is_a_key_error(keys: dict[SigningAlgorithm, SigningKey]) -> None:
    """Any kid that is not in the ring, path and SQL lookalikes included, is a KeyError."""
    keyring = ring(keys["ES256"])
    for kid in ("nope", "../../dev/null", "' OR 1=1--", ""):
        with pytest.raises(KeyError):
            keyring.verification_key(kid)


def test_jwks_publishes_public_asymmetric_keys_only(
    keys: dict[SigningAlgorithm, SigningKey],
) -> None:
    """The JWKS lists every verifying asymmetric key with kid/alg/use and nothing private."""
    keyring = ring(keys["EdDSA"].retire(NOW), keys["ES256"], keys["RS256"], keys["HS256"])
    published = keyring.jwks()["keys"]
    assert {jwk["kid"] for jwk in published} == {
        keys[alg].kid for alg in ("EdDSA", "ES256", "RS256")
    }
    for jwk in published:
        assert not PRIVATE_JWK_MEMBERS & jwk.keys()
        assert jwk["use"] == "sig"
        assert jwk["alg"] == keys[jwk["alg"]].alg  # type: ignore[index]
    assert keys["HS256"].kid not in json.dumps(published)
