"""A :class:`~keyturn.outbox.store.Sealer` with AES-256-GCM (``cryptography``).

Outbox payloads can hold secrets (a mail job carries a password-reset link), so
they are encrypted before they reach the store. Integration may seal with the
key-encryption key instead; this class is the small standalone option.
"""

from __future__ import annotations

import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keyturn.errors import ConfigurationError

__all__ = ["AesGcmSealer"]

_VERSION = b"\x01"
_NONCE_BYTES = 12


class AesGcmSealer:
    """Seal with AES-256-GCM: ``version || nonce || ciphertext+tag``.

    ``context`` is bound as associated data, so a payload sealed for one purpose
    (``b"keyturn-outbox"``) does not open under another with the same key.
    """

    def __init__(self, key: bytes, *, context: bytes = b"keyturn-outbox") -> None:
        """Raises:
        ConfigurationError: ``key`` is not 32 bytes.
        """
        if len(key) != 32:
            raise ConfigurationError("The outbox sealing key must be 32 bytes.")
        self._aead = AESGCM(key)
        self._context = context

    def __repr__(self) -> str:
        return f"AesGcmSealer(context={self._context!r}, key=<redacted>)"

    def seal(self, plaintext: bytes) -> bytes:
        """Encrypt and authenticate ``plaintext`` with a fresh random nonce."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, self._context)

    def open(self, sealed: bytes) -> bytes:
        """Decrypt ``sealed``.

        Raises:
            ValueError: unknown format version or too short.
            cryptography.exceptions.InvalidTag: wrong key, context, or altered bytes.
        """
        if len(sealed) < 1 + _NONCE_BYTES + 16 or sealed[:1] != _VERSION:
            raise ValueError("Not a sealed outbox payload.")
        nonce = sealed[1 : 1 + _NONCE_BYTES]
        return self._aead.decrypt(nonce, sealed[1 + _NONCE_BYTES :], self._context)
