"""Verifiers for password hashes imported from other systems: bcrypt and Django PBKDF2.

keyturn never writes these formats. An imported account signs in once against its
old hash, and :class:`~keyturn.accounts.passwords.PasswordHasher` then replaces it with
argon2id (``needs_rehash`` is true for anything that is not argon2id).

The checks are done by maintained code, never by hand: the ``bcrypt`` package for
bcrypt, and ``hashlib.pbkdf2_hmac`` with ``hmac.compare_digest`` for Django's
``pbkdf2_sha256``/``pbkdf2_sha1``, which is exactly what Django's
``PBKDF2PasswordHasher`` computes. Both release the GIL, and the hasher runs them
in its worker threads, never on the event loop.

Formats:

- bcrypt: ``$2a$``, ``$2b$`` or ``$2y$`` + two-digit cost + 53 characters of salt
  and hash (PHP's ``password_hash``, Node's ``bcrypt``, Ruby's ``bcrypt``, passlib),
  optionally behind Django's ``bcrypt$`` prefix.
- Django: ``pbkdf2_sha256$<iterations>$<salt>$<base64 hash>`` (and ``pbkdf2_sha1``).

bcrypt reads at most 72 bytes of a password. A longer password (counted in UTF-8
bytes) never matches a bcrypt hash: keyturn would otherwise accept, and store as
argon2id, a password it never checked in full. The refusal costs the same bcrypt
work as a wrong password. Such a user resets their password instead.

Costs are bounded so that an imported hash cannot make one sign-in run for minutes:
bcrypt cost 4-:data:`MAX_BCRYPT_COST`, PBKDF2 1-:data:`MAX_PBKDF2_ITERATIONS` iterations.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from typing import Final

import argon2
import bcrypt
from argon2.exceptions import InvalidHashError

from keyturn.errors import InvalidCredentials

__all__ = [
    "BCRYPT_MAX_PASSWORD_BYTES",
    "MAX_BCRYPT_COST",
    "MAX_PBKDF2_ITERATIONS",
    "BcryptScheme",
    "DjangoPbkdf2Scheme",
    "UnsupportedHash",
    "default_legacy_schemes",
    "hash_format",
    "legacy_cost",
]

#: bcrypt ignores every byte after the 72nd; keyturn refuses such passwords instead.
BCRYPT_MAX_PASSWORD_BYTES: Final = 72
#: The highest bcrypt cost accepted (2^16 rounds: a few seconds per check).
MAX_BCRYPT_COST: Final = 16
#: The most PBKDF2 iterations accepted (Django 6.0 writes 1,200,000).
MAX_PBKDF2_ITERATIONS: Final = 10_000_000

_BCRYPT = re.compile(r"(?:bcrypt\$)?(\$2[aby]\$(\d{2})\$[./A-Za-z0-9]{53})")
_DJANGO = re.compile(r"pbkdf2_(sha256|sha1)\$([1-9][0-9]{0,8})\$([^$\s]{1,128})\$([A-Za-z0-9+/=]+)")
_DIGEST_SIZES: Final = {"sha256": 32, "sha1": 20}
#: What the refused over-long password is checked as: never a real password's
#: bytes (0xff is not UTF-8), so the work is spent and the answer is always "no".
_FILLER: Final = b"\xff" * BCRYPT_MAX_PASSWORD_BYTES


class UnsupportedHash(ValueError):
    """A stored hash that keyturn cannot verify; the message never repeats the hash."""


def _utf8(password: str) -> bytes:
    try:
        return password.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidCredentials() from None


class BcryptScheme:
    """bcrypt hashes (``$2a$``, ``$2b$``, ``$2y$``; Django's ``bcrypt$`` prefix too).

    The password is checked as typed (its UTF-8 bytes, not normalised), as the
    system that made the hash saw it.
    """

    name = "bcrypt"

    def identifies(self, stored_hash: str) -> bool:
        """Whether ``stored_hash`` looks like bcrypt (a cheap prefix test)."""
        return stored_hash.startswith(("$2a$", "$2b$", "$2y$", "bcrypt$$2"))

    def parse(self, stored_hash: str) -> bytes:
        """The bare bcrypt hash, as bytes for ``bcrypt.checkpw``.

        Raises:
            UnsupportedHash: not a well-formed bcrypt hash, or its cost is out of range.
        """
        match = _BCRYPT.fullmatch(stored_hash)
        if match is None:
            raise UnsupportedHash("malformed bcrypt hash")
        cost = int(match.group(2))
        if not 4 <= cost <= MAX_BCRYPT_COST:
            raise UnsupportedHash(f"bcrypt cost {cost} is outside 4-{MAX_BCRYPT_COST}")
        return match.group(1).encode("ascii")

    def verify(self, stored_hash: str, password: str) -> None:
        """Check ``password`` against a bcrypt hash (blocking: run it in a thread).

        Raises:
            InvalidCredentials: wrong password, a password over 72 bytes, or a
                malformed hash.
        """
        try:
            hashed = self.parse(stored_hash)
        except UnsupportedHash:
            raise InvalidCredentials() from None
        secret = _utf8(password)
        try:
            if len(secret) > BCRYPT_MAX_PASSWORD_BYTES:
                # Same work as a wrong password, then no: see the module doc.
                bcrypt.checkpw(_FILLER, hashed)
                raise InvalidCredentials()
            matched = bcrypt.checkpw(secret, hashed)
        except ValueError:  # a salt the library refuses
            raise InvalidCredentials() from None
        if not matched:
            raise InvalidCredentials()


class DjangoPbkdf2Scheme:
    """Django's ``pbkdf2_sha256$…`` and ``pbkdf2_sha1$…`` hashes.

    Django computes ``base64(pbkdf2_hmac(digest, utf8(password), utf8(salt),
    iterations))`` with the digest's own output length; so does this, with
    ``hashlib`` and a constant-time comparison.
    """

    name = "django-pbkdf2"

    def identifies(self, stored_hash: str) -> bool:
        """Whether ``stored_hash`` looks like Django PBKDF2 (a cheap prefix test)."""
        return stored_hash.startswith(("pbkdf2_sha256$", "pbkdf2_sha1$"))

    def parse(self, stored_hash: str) -> tuple[str, int, bytes, bytes]:
        """``(digest, iterations, salt, expected)`` of a Django PBKDF2 hash.

        Raises:
            UnsupportedHash: malformed, or the iteration count is out of range.
        """
        match = _DJANGO.fullmatch(stored_hash)
        if match is None:
            raise UnsupportedHash("malformed Django PBKDF2 hash")
        digest, iterations_text, salt, encoded = match.groups()
        iterations = int(iterations_text)
        if iterations > MAX_PBKDF2_ITERATIONS:
            raise UnsupportedHash(
                f"PBKDF2 iteration count {iterations} is above {MAX_PBKDF2_ITERATIONS}"
            )
        try:
            expected = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise UnsupportedHash("malformed Django PBKDF2 hash (base64)") from None
        if len(expected) != _DIGEST_SIZES[digest]:
            raise UnsupportedHash("malformed Django PBKDF2 hash (length)")
        return digest, iterations, salt.encode("utf-8"), expected

    def verify(self, stored_hash: str, password: str) -> None:
        """Check ``password`` against a Django PBKDF2 hash (blocking: run it in a thread).

        Raises:
            InvalidCredentials: wrong password or a malformed hash.
        """
        try:
            digest, iterations, salt, expected = self.parse(stored_hash)
        except UnsupportedHash:
            raise InvalidCredentials() from None
        computed = hashlib.pbkdf2_hmac(digest, _utf8(password), salt, iterations)
        if not hmac.compare_digest(computed, expected):
            raise InvalidCredentials()


def default_legacy_schemes() -> tuple[BcryptScheme, DjangoPbkdf2Scheme]:
    """The imported formats every :class:`~keyturn.accounts.passwords.PasswordHasher` verifies."""
    return (BcryptScheme(), DjangoPbkdf2Scheme())


def hash_format(stored_hash: str) -> str:
    """The name of a stored hash's format, after checking it in full.

    ``"argon2id"`` (or ``"argon2i"``/``"argon2d"``), ``"bcrypt"``,
    ``"pbkdf2_sha256"`` or ``"pbkdf2_sha1"``. Used by ``keyturn user import``
    so that a hash keyturn could never verify is refused before it is stored.

    Raises:
        UnsupportedHash: unknown or malformed; the message names the problem,
            never the hash.
    """
    if stored_hash.startswith("$argon2"):
        try:
            params = argon2.extract_parameters(stored_hash)
        except InvalidHashError:
            raise UnsupportedHash("malformed argon2 hash") from None
        return f"argon2{params.type.name.lower()}"
    bcrypt_scheme, django_scheme = default_legacy_schemes()
    if bcrypt_scheme.identifies(stored_hash):
        bcrypt_scheme.parse(stored_hash)
        return "bcrypt"
    if django_scheme.identifies(stored_hash):
        return f"pbkdf2_{django_scheme.parse(stored_hash)[0]}"
    if stored_hash.startswith("!"):
        raise UnsupportedHash("an unusable password (Django '!' marker): the account has none")
    prefix = stored_hash.split("$", 2)[:2]
    known = "bcrypt ($2a$, $2b$, $2y$), pbkdf2_sha256, pbkdf2_sha1 or argon2"
    if len(prefix) == 2 and prefix[0] and prefix[0].isidentifier() and len(prefix[0]) <= 20:
        raise UnsupportedHash(f"unsupported hash format {prefix[0]!r}; expected {known}")
    raise UnsupportedHash(f"unrecognised hash format; expected {known}")


def legacy_cost(stored_hash: str) -> tuple[str, int] | None:
    """``(format, cost)`` of an imported hash: ``("bcrypt", 12)`` (its cost),
    ``("pbkdf2_sha256", 1_200_000)`` (its iterations); None for argon2, or for
    anything keyturn could not verify. Stores use it to find the slowest
    imported hashes (:meth:`~keyturn.stores.protocols.UserStore.slowest_legacy_hashes`)."""
    bcrypt_scheme, django_scheme = default_legacy_schemes()
    try:
        if bcrypt_scheme.identifies(stored_hash):
            bcrypt_scheme.parse(stored_hash)
            match = _BCRYPT.fullmatch(stored_hash)
            return ("bcrypt", int(match.group(2))) if match else None
        if django_scheme.identifies(stored_hash):
            digest, iterations, _, _ = django_scheme.parse(stored_hash)
            return (f"pbkdf2_{digest}", iterations)
    except UnsupportedHash:
        return None
    return None
