"""Signing keys: the stored record, how a new one is made, and how one is loaded.

A :class:`SigningKey` is a plain record, so a store can persist it and hand it back
unchanged. :func:`generate_key` makes a fresh one; :func:`load_private_key` and
:func:`public_key_from_jwk` turn a record, or one entry of a published JWK Set, back
into a joserfc key object after checking its type, size and ``kid``.

Sealing private keys at rest lives in :mod:`keyturn.keys.encryption`; the ring that
signs with the newest key and verifies by ``kid`` lives in :mod:`keyturn.keys.ring`.

The JOSE work (JWK import and export, RFC 7638 thumbprints, the per-algorithm sign
and verify code) is done by joserfc on top of ``cryptography``; see ``docs/tokens.md``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc.jwa import JWSAlgModel
from joserfc.jwk import ECKey, Key, OctKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from keyturn.errors import ConfigurationError
from keyturn.settings import SigningAlgorithm

__all__ = [
    "ALGORITHMS",
    "SigningKey",
    "generate_key",
    "jws_algorithm",
]

#: The algorithms keyturn signs with. ``HS256`` keys are never published.
ALGORITHMS: Final[tuple[SigningAlgorithm, ...]] = ("EdDSA", "ES256", "RS256", "HS256")

RSA_BITS: Final = 3072
MIN_RSA_BITS: Final = 2048
HMAC_KEY_BYTES: Final = 32

#: JWK members that are never public (RFC 7517/7518): the JWKS must not carry them.
PRIVATE_JWK_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def jws_algorithm(alg: str) -> JWSAlgModel:
    """joserfc's implementation of ``alg``, one of :data:`ALGORITHMS`.

    Read from the registry's table directly: going through ``get_alg`` would warn on
    every call for ``EdDSA`` (RFC 9864 prefers ``Ed25519``, which fewer gateways and
    client libraries understand yet).

    Raises:
        ConfigurationError: ``alg`` is not one keyturn signs with.
    """
    if alg not in ALGORITHMS:
        raise ConfigurationError(f"unsupported signing algorithm {alg!r}")
    return JWSRegistry.algorithms[alg]


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One signing key, as stored.

    ``private_key`` is the private JWK as UTF-8 JSON (plaintext here: a store
    encrypts it with :class:`~keyturn.keys.encryption.KeyEncryptor` before it
    writes). ``public_jwk`` holds the public members plus ``kid``, ``alg`` and
    ``use``; it is empty for ``HS256``, whose key is a shared secret and is never
    published. ``kid`` is the RFC 7638 thumbprint of the key, so it is derived, unique
    and says nothing about the deployment. Times are POSIX seconds; ``retired_at`` is
    set when a newer key takes over signing.
    """

    kid: str
    alg: SigningAlgorithm
    private_key: bytes = field(repr=False)
    public_jwk: Mapping[str, str]
    created_at: float
    retired_at: float | None = None

    @property
    def is_symmetric(self) -> bool:
        """True for HMAC keys, which verify and sign with the same secret."""
        return self.alg == "HS256"

    def retire(self, at: float) -> SigningKey:
        """This key with ``retired_at`` set (keeps an earlier retirement time)."""
        if self.retired_at is not None and self.retired_at <= at:
            return self
        return replace(self, retired_at=at)


def generate_key(alg: SigningAlgorithm, *, now: float) -> SigningKey:
    """A fresh key for ``alg``: Ed25519, P-256, RSA-3072 or 32 random HMAC bytes.

    Raises:
        ConfigurationError: ``alg`` is not one of :data:`ALGORITHMS`.
    """
    jose_key: Key
    if alg == "EdDSA":
        jose_key = OKPKey.import_key(ed25519.Ed25519PrivateKey.generate())
    elif alg == "ES256":
        jose_key = ECKey.import_key(ec.generate_private_key(ec.SECP256R1()))
    elif alg == "RS256":
        jose_key = RSAKey.import_key(rsa.generate_private_key(65537, RSA_BITS))
    elif alg == "HS256":
        jose_key = OctKey.import_key(secrets.token_bytes(HMAC_KEY_BYTES))
    else:
        raise ConfigurationError(f"unsupported signing algorithm {alg!r}")
    kid = jose_key.thumbprint()
    private = json.dumps(jose_key.as_dict(private=True), sort_keys=True).encode()
    public: dict[str, str] = {}
    if alg != "HS256":
        public = {**_str_members(jose_key.as_dict(private=False)), "kid": kid, "alg": alg}
        public["use"] = "sig"
    return SigningKey(
        kid=kid, alg=alg, private_key=private, public_jwk=public, created_at=now, retired_at=None
    )


def _str_members(jwk: Mapping[str, Any]) -> dict[str, str]:
    return {name: str(value) for name, value in jwk.items()}


def load_private_key(key: SigningKey) -> Key:
    """The joserfc key object for a record, checked against its ``kid`` and ``alg``.

    Raises:
        ConfigurationError: the material is unreadable, is the wrong type or size for
            ``alg`` (SEC-50: RSA >= 2048 bits, HMAC >= 32 bytes), or its thumbprint is
            not ``kid`` (a swapped or corrupted record).
    """
    try:
        jwk = json.loads(key.private_key)
        jose_key = _KEY_TYPES[key.alg].import_key(jwk)
    except ConfigurationError:
        raise
    except Exception:  # any parse failure of stored material is a broken record
        raise ConfigurationError(f"signing key {key.kid!r} is unreadable") from None
    _check_strength(key, jose_key)
    if not secrets.compare_digest(jose_key.thumbprint(), key.kid):
        raise ConfigurationError(f"signing key {key.kid!r} does not match its kid")
    return jose_key


_KEY_TYPES: Final[dict[str, type[OKPKey] | type[ECKey] | type[RSAKey] | type[OctKey]]] = {
    "EdDSA": OKPKey,
    "ES256": ECKey,
    "RS256": RSAKey,
    "HS256": OctKey,
}


def _check_strength(key: SigningKey, jose_key: Key) -> None:
    problem = _strength_problem(jose_key)
    if not jose_key.is_private:
        problem = "private key material is missing"
    if problem:
        raise ConfigurationError(f"signing key {key.kid!r}: {problem}")


def _strength_problem(jose_key: Key) -> str | None:
    """Why ``jose_key`` is too weak or of the wrong curve for keyturn, or None."""
    if isinstance(jose_key, OKPKey) and jose_key.curve_name != "Ed25519":
        return "EdDSA keys must be Ed25519"
    if isinstance(jose_key, ECKey) and jose_key.curve_name != "P-256":
        return "ES256 keys must be on P-256"
    if isinstance(jose_key, RSAKey) and jose_key.public_key.key_size < MIN_RSA_BITS:
        return f"RSA keys must have at least {MIN_RSA_BITS} bits"
    if isinstance(jose_key, OctKey) and len(jose_key.raw_value) < HMAC_KEY_BYTES:
        return f"HS256 keys must have at least {HMAC_KEY_BYTES} bytes"
    return None


def public_key_from_jwk(jwk: Any, created_at: float) -> tuple[SigningKey, Key]:
    """A public-only record and key object for one JWK of a JWK Set (see
    :meth:`keyturn.keys.ring.KeyRing.from_jwks`)."""
    if not isinstance(jwk, Mapping):
        raise ConfigurationError("every JWK Set entry must be a JSON object")
    kid, alg = jwk.get("kid"), jwk.get("alg")
    if not isinstance(kid, str) or not kid:
        raise ConfigurationError('a JWK without "kid" cannot be selected by a token')
    if alg not in ALGORITHMS or alg == "HS256":
        raise ConfigurationError(f'JWK {kid!r}: "alg" must be EdDSA, ES256 or RS256')
    if jwk.get("kty") == "oct":
        raise ConfigurationError(f"JWK {kid!r}: symmetric (oct) keys are never published")
    if PRIVATE_JWK_MEMBERS & jwk.keys():
        raise ConfigurationError(f"JWK {kid!r} holds private key material")
    if jwk.get("use", "sig") != "sig":
        raise ConfigurationError(f"JWK {kid!r} is not a signature key")
    members = {
        name: value for name, value in jwk.items() if name in ("kty", "crv", "x", "y", "n", "e")
    }
    try:
        key = _KEY_TYPES[alg].import_key(members)
    except Exception:  # any parse failure of a published key means an unusable set
        raise ConfigurationError(f"JWK {kid!r} is not a valid {alg} public key") from None
    if key.is_private:
        raise ConfigurationError(f"JWK {kid!r} holds private key material")
    record = SigningKey(
        kid=kid,
        alg=alg,
        private_key=b"",
        public_jwk=_str_members({**members, "kid": kid, "alg": alg, "use": "sig"}),
        created_at=created_at,
    )
    problem = _strength_problem(key)
    if problem:
        raise ConfigurationError(f"JWK {kid!r}: {problem}")
    return record, key
