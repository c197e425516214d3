"""Signing keys: generate, identify, encrypt at rest, and hold as a ring.

A :class:`SigningKey` is a plain record, so a store can persist it and hand it back
unchanged. :class:`KeyRing` turns a snapshot of records into loaded key objects once
(parsing keys per request costs up to 60x a verify), picks the newest key to sign
with, and answers "which key verifies ``kid``?" for every key whose tokens may still
be alive. :class:`KeyEncryptor` seals private key material with AES-256-GCM before it
is stored.

The JOSE work (JWK import and export, RFC 7638 thumbprints, the per-algorithm sign
and verify code) is done by joserfc on top of ``cryptography``; see ``docs/tokens.md``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc.jwa import JWSAlgModel
from joserfc.jwk import ECKey, Key, OctKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from keyturn.errors import ConfigurationError
from keyturn.settings import Settings, SigningAlgorithm

__all__ = [
    "ALGORITHMS",
    "KekSource",
    "KeyEncryptor",
    "KeyRing",
    "SigningKey",
    "VerificationKey",
    "generate_kek",
    "generate_key",
    "jws_algorithm",
    "kek_file_for",
    "resolve_kek",
]

#: The algorithms keyturn signs with. ``HS256`` keys are never published.
ALGORITHMS: Final[tuple[SigningAlgorithm, ...]] = ("EdDSA", "ES256", "RS256", "HS256")

RSA_BITS: Final = 3072
MIN_RSA_BITS: Final = 2048
HMAC_KEY_BYTES: Final = 32
KEK_BYTES: Final = 32
_NONCE_BYTES: Final = 12
_SEALED_VERSION: Final = b"\x01"

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
    encrypts it with :class:`KeyEncryptor` before it writes). ``public_jwk`` holds
    the public members plus ``kid``, ``alg`` and ``use``; it is empty for ``HS256``,
    whose key is a shared secret and is never published. ``kid`` is the RFC 7638
    thumbprint of the key, so it is derived, unique and says nothing about the
    deployment. Times are POSIX seconds; ``retired_at`` is set when a newer key takes
    over signing.
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


# --- encryption at rest -----------------------------------------------------------


def generate_kek() -> str:
    """A new key-encryption key: 32 random bytes, base64url without padding, the
    form ``--key-encryption-key`` / ``KEYTURN_KEY_ENCRYPTION_KEY`` expects."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEK_BYTES)).rstrip(b"=").decode()


class KeyEncryptor:
    """Seals private key material with AES-256-GCM under the key-encryption key.

    The ``kid`` is the associated data, so a sealed blob copied onto another key's
    row does not decrypt. Layout: version byte, 12-byte random nonce, ciphertext and
    tag.
    """

    __slots__ = ("_aead",)

    def __init__(self, kek: bytes) -> None:
        """Raises:
        ConfigurationError: ``kek`` is not exactly 32 bytes."""
        if len(kek) != KEK_BYTES:
            raise ConfigurationError(f"the key-encryption key must be {KEK_BYTES} bytes")
        self._aead = AESGCM(kek)

    def __repr__(self) -> str:
        return "KeyEncryptor(<secret>)"

    @classmethod
    def from_text(cls, text: str) -> KeyEncryptor:
        """From the base64url text :func:`generate_kek` makes (padding optional).

        Raises:
            ConfigurationError: not base64url, or not 32 bytes once decoded.
        """
        raw = text.strip()
        try:
            kek = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        except (binascii.Error, ValueError):
            raise ConfigurationError("the key-encryption key is not base64url") from None
        return cls(kek)

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyEncryptor:
        """From ``settings.key_encryption_key``.

        Raises:
            ConfigurationError: the setting is missing or malformed.
        """
        if settings.key_encryption_key is None:
            raise ConfigurationError("--key-encryption-key is required to store signing keys")
        return cls.from_text(settings.key_encryption_key.get_secret_value())

    def encrypt(self, kid: str, plaintext: bytes) -> bytes:
        """Seal ``plaintext`` (a private key) bound to ``kid``."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return _SEALED_VERSION + nonce + self._aead.encrypt(nonce, plaintext, kid.encode())

    def decrypt(self, kid: str, sealed: bytes) -> bytes:
        """Open what :meth:`encrypt` sealed for the same ``kid``.

        Raises:
            ConfigurationError: wrong key-encryption key, wrong ``kid``, or a
                corrupted blob (they are indistinguishable by design).
        """
        if len(sealed) < 1 + _NONCE_BYTES + 16 or sealed[:1] != _SEALED_VERSION:
            raise ConfigurationError(f"signing key {kid!r}: sealed material is malformed")
        nonce, body = sealed[1 : 1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, kid.encode())
        except InvalidTag:
            raise ConfigurationError(
                f"signing key {kid!r} cannot be decrypted: wrong key-encryption key?"
            ) from None

    def seal(self, key: SigningKey) -> SigningKey:
        """The record with ``private_key`` encrypted, ready for a store."""
        return replace(key, private_key=self.encrypt(key.kid, key.private_key))

    def unseal(self, key: SigningKey) -> SigningKey:
        """The record with ``private_key`` decrypted, as a store hands it to a ring.

        Raises:
            ConfigurationError: see :meth:`decrypt`.
        """
        return replace(key, private_key=self.decrypt(key.kid, key.private_key))


class KekSource(NamedTuple):
    """What :func:`resolve_kek` found: the encryptor, and where its key came from.

    ``created`` is the file a new key-encryption key was just written to (tell the
    operator to back it up); ``ephemeral`` is True for an in-memory database, whose
    keys die with the process anyway.
    """

    encryptor: KeyEncryptor
    created: Path | None = None
    ephemeral: bool = False


def kek_file_for(settings: Settings) -> Path | None:
    """``<database file>.kek`` for a SQLite file database, else None."""
    path = settings.sqlite_path
    return None if path is None else path.with_name(path.name + ".kek")


def resolve_kek(settings: Settings) -> KekSource:
    """The key-encryption key for the configured database.

    1. ``settings.key_encryption_key`` when set;
    2. a SQLite file database: ``<database file>.kek`` beside it, created (mode 0600,
       atomically) on first use;
    3. an in-memory SQLite database: a fresh ephemeral key;
    4. anything else (PostgreSQL, shared by many servers): an error, since every
       instance must read the same signing keys.

    Raises:
        ConfigurationError: the key is not 32 bytes of base64url, the file cannot be
            read or written, or no key is configured for PostgreSQL.
    """
    if settings.key_encryption_key is not None:
        return KekSource(KeyEncryptor.from_settings(settings))
    path = kek_file_for(settings)
    if path is not None:
        return _kek_from_file(path)
    if settings.is_sqlite:
        return KekSource(KeyEncryptor.from_text(generate_kek()), ephemeral=True)
    raise ConfigurationError(
        "set --key-encryption-key (KEYTURN_KEY_ENCRYPTION_KEY) so every instance can read "
        "the signing keys"
    )


def _kek_from_file(path: Path) -> KekSource:
    """Read ``path``, or create it with a new key if it does not exist yet.

    The key is written to a private temporary file (``O_CREAT | O_EXCL``, mode 0600)
    and hard-linked into place, so a concurrent reader never sees a half-written
    file and of two concurrent creators exactly one wins; the loser reads the
    winner's key.
    """
    created = None
    if not path.exists():
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, (generate_kek() + "\n").encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(temporary, path)
                created = path
            except FileExistsError:
                pass  # another process won the race: use its key
            finally:
                os.unlink(temporary)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot create the key-encryption key file {path}: {exc.strerror}"
            ) from None
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not ASCII"
        raise ConfigurationError(
            f"cannot read the key-encryption key file {path}: {reason}"
        ) from None
    try:
        encryptor = KeyEncryptor.from_text(text)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{path}: {exc.detail}") from None
    return KekSource(encryptor, created=created)


# --- the ring ---------------------------------------------------------------------


class VerificationKey(NamedTuple):
    """A loaded key that may verify tokens, and the one algorithm it allows."""

    key: Key
    alg: SigningAlgorithm


@dataclass(frozen=True, slots=True)
class _Loaded:
    record: SigningKey
    verify_key: Key
    algorithm: JWSAlgModel
    usable_until: float


class KeyRing:
    """A snapshot of signing keys, loaded once.

    ``keys`` are plaintext records (see :meth:`KeyEncryptor.unseal`). A key verifies
    while it is unretired, and for ``access_token_ttl + clock_leeway`` seconds after
    it was retired: tokens it signed may still be alive. Keys past that window at
    ``now`` are not loaded at all. Rebuild the ring when the stored keys change.

    Raises:
        ConfigurationError: duplicate ``kid``s, or a record that fails
            :func:`load_private_key`.
    """

    __slots__ = ("_keys", "_signing", "_signing_key", "_verifiers", "_window")

    def __init__(
        self,
        keys: Sequence[SigningKey],
        *,
        now: float,
        access_token_ttl: int,
        clock_leeway: int,
    ) -> None:
        self._window = float(access_token_ttl + clock_leeway)
        self._verifiers: dict[str, _Loaded] = {}
        signing: _Loaded | None = None
        signing_private: Key | None = None
        for record in keys:
            if record.kid in self._verifiers:
                raise ConfigurationError(f"duplicate signing key id {record.kid!r}")
            usable_until = (
                math.inf if record.retired_at is None else record.retired_at + self._window
            )
            if now >= usable_until:
                continue
            private = load_private_key(record)
            verify_key = private if record.is_symmetric else _public_part(private)
            algorithm = jws_algorithm(record.alg)
            _check_key_type(record, algorithm, verify_key)
            loaded = _Loaded(record, verify_key, algorithm, usable_until)
            self._verifiers[record.kid] = loaded
            if record.retired_at is None and (
                signing is None
                or (record.created_at, record.kid) > (signing.record.created_at, signing.record.kid)
            ):
                signing, signing_private = loaded, private
        self._keys = tuple(loaded.record for loaded in self._verifiers.values())
        self._signing = signing
        self._signing_key = signing_private

    @classmethod
    def from_settings(
        cls, keys: Sequence[SigningKey], settings: Settings, *, now: float
    ) -> KeyRing:
        """A ring whose retirement window follows ``settings``."""
        return cls(
            keys,
            now=now,
            access_token_ttl=settings.access_token_ttl,
            clock_leeway=settings.clock_leeway,
        )

    @classmethod
    def from_jwks(cls, jwks: Mapping[str, Any], *, created_at: float = 0.0) -> KeyRing:
        """A verify-only ring from a published JWK Set (``{"keys": [...]}``), for
        services that only have an issuer's JWKS.

        Each JWK must carry ``kid`` and ``alg`` (one of EdDSA, ES256, RS256): the
        algorithm is pinned from the JWK, never from a token. ``oct`` keys, JWKs with
        private members, ``use`` other than ``sig``, and key types or sizes that do
        not fit ``alg`` are refused. The ring cannot sign (:attr:`signing_key` raises).

        Raises:
            ConfigurationError: the set or one of its keys breaks a rule above.
        """
        entries = jwks.get("keys") if isinstance(jwks, Mapping) else None
        if not isinstance(entries, list):
            raise ConfigurationError('a JWK Set needs a "keys" list')
        ring = cls.__new__(cls)
        ring._window = 0.0
        ring._verifiers = {}
        ring._signing = ring._signing_key = None
        for jwk in entries:
            record, key = _public_key_from_jwk(jwk, created_at)
            if record.kid in ring._verifiers:
                raise ConfigurationError(f"duplicate key id {record.kid!r} in the JWK Set")
            algorithm = jws_algorithm(record.alg)
            _check_key_type(record, algorithm, key)
            ring._verifiers[record.kid] = _Loaded(record, key, algorithm, math.inf)
        ring._keys = tuple(loaded.record for loaded in ring._verifiers.values())
        return ring

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        """The records that still verify (retired ones inside their window included)."""
        return self._keys

    @property
    def signing_key(self) -> SigningKey:
        """The newest unretired key: the one that signs new tokens.

        Raises:
            ConfigurationError: every key is retired (rotate to make one).
        """
        if self._signing is None:
            raise ConfigurationError("no active signing key: run `keyturn key rotate`")
        return self._signing.record

    def signer(self) -> tuple[SigningKey, Key, JWSAlgModel]:
        """The signing record, its loaded private key and joserfc's algorithm.

        Raises:
            ConfigurationError: see :attr:`signing_key`.
        """
        record = self.signing_key
        assert self._signing is not None and self._signing_key is not None
        return record, self._signing_key, self._signing.algorithm

    def verification_key(self, kid: str, *, now: float | None = None) -> VerificationKey:
        """The key ``kid`` names and the only algorithm it accepts.

        ``kid`` is only ever a dictionary key here: no path, query or URL is built
        from it. With ``now``, a retired key whose window has closed since the ring
        was built is refused too.

        Raises:
            KeyError: no such key (or no longer usable at ``now``).
        """
        loaded = self._verifiers[kid]
        if now is not None and now >= loaded.usable_until:
            raise KeyError(kid)
        return VerificationKey(loaded.verify_key, loaded.record.alg)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JWK Set to publish: public members of every asymmetric key that still
        verifies, each with ``kid``, ``alg`` and ``use: "sig"``. HMAC keys never
        appear."""
        published = []
        for loaded in self._verifiers.values():
            record = loaded.record
            if record.is_symmetric:
                continue
            jwk = {k: v for k, v in record.public_jwk.items() if k not in PRIVATE_JWK_MEMBERS}
            published.append({**jwk, "kid": record.kid, "alg": record.alg, "use": "sig"})
        return {"keys": published}


def _check_key_type(record: SigningKey, algorithm: JWSAlgModel, key: Key) -> None:
    """joserfc's own guard: the key type must be the algorithm's (no HMAC with an
    RSA key and the like). Done once per ring, not per token."""
    try:
        algorithm.check_key(key)
    except Exception:  # joserfc raises several JoseError kinds here
        raise ConfigurationError(f"signing key {record.kid!r} does not fit {record.alg}") from None


def _public_key_from_jwk(jwk: Any, created_at: float) -> tuple[SigningKey, Key]:
    """A public-only record and key object for one JWK of a JWK Set (see
    :meth:`KeyRing.from_jwks`)."""
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


def _public_part(private: Key) -> Key:
    """The public half as its own key object, so verify never derives it per call."""
    public = private.as_dict(private=False)
    return type(private).import_key(public)
