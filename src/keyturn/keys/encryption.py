"""Encryption at rest: the key-encryption key and sealing private keys with it.

Stores never hold a private signing key in the clear. :class:`KeyEncryptor` seals a
:class:`~keyturn.keys.records.SigningKey`'s private material with AES-256-GCM under the
key-encryption key (KEK) before it is written, and opens it again on the way back.
:func:`resolve_kek` finds the KEK for the configured database: from the settings, from
a ``.kek`` file beside a SQLite database (created on first use), or fresh for an
in-memory one; :func:`generate_kek` makes a new one.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Final, NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keyturn.errors import ConfigurationError
from keyturn.keys.records import SigningKey
from keyturn.settings import Settings

__all__ = [
    "KekSource",
    "KeyEncryptor",
    "generate_kek",
    "kek_file_for",
    "kek_for",
    "resolve_kek",
]

KEK_BYTES: Final = 32
_NONCE_BYTES: Final = 12
_SEALED_VERSION: Final = b"\x01"


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

    __slots__ = ("_aead", "_kek")

    def __init__(self, kek: bytes) -> None:
        """Raises:
        ConfigurationError: ``kek`` is not exactly 32 bytes."""
        if len(kek) != KEK_BYTES:
            raise ConfigurationError(f"the key-encryption key must be {KEK_BYTES} bytes")
        self._aead = AESGCM(kek)
        self._kek = kek

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

    def derive_key(self, purpose: str) -> bytes:
        """A 32-byte key for ``purpose`` (HKDF-SHA256 of the key-encryption key,
        ``purpose`` as the info): a secret of this installation for another use
        (the audit log's ``email_hash``), independent of the key itself."""
        info = f"keyturn {purpose}".encode()
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(self._kek)

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


def kek_for(settings: Settings, *, durable: bool) -> KekSource:
    """The key-encryption key for a storage: :func:`resolve_kek` when what is
    stored outlives the process (``durable``); otherwise (memory storage, whose
    keys die with the process) the configured key, or a fresh ephemeral one.

    Raises:
        ConfigurationError: see :func:`resolve_kek`, or a malformed configured key.
    """
    if durable:
        return resolve_kek(settings)
    if settings.key_encryption_key is not None:
        return KekSource(KeyEncryptor.from_settings(settings))
    return KekSource(KeyEncryptor.from_text(generate_kek()), ephemeral=True)


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
