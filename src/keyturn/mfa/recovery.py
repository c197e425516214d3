"""Recovery codes: the way back in when the phone or the security key is lost.

A set is 10 codes of 12 characters from a 32-letter alphabet without look-alikes
(Crockford's base32, lower case: 60 bits each), shown once as ``xxxx-xxxx-xxxx``.
Only keyed hashes are stored; each code works once; a new set replaces the old.

Why HMAC-SHA-256 and not argon2: a slow hash protects secrets a person chose,
whose guesses an attacker can enumerate. These codes are 60 random bits from
:mod:`secrets`, so a dump of the store leaves 2**60 guesses per code for a fast
hash, and the HMAC key (kept outside the database, e.g. derived from the
key-encryption key) makes even that impossible without the key. A fast keyed
hash also lets the store look a code up by its hash and delete it atomically,
instead of running argon2 over every code of the set on each attempt.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

from keyturn.clock import Clock
from keyturn.errors import InvalidMfaCode
from keyturn.mfa.store import RecoveryCodeStore

__all__ = [
    "RECOVERY_CODE_BITS",
    "RECOVERY_CODE_COUNT",
    "RecoveryCodes",
    "hash_code",
    "new_code",
    "normalize_code",
]

RECOVERY_CODE_COUNT: Final = 10
_ALPHABET: Final = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32: no i, l, o, u
_LENGTH: Final = 12
_GROUP: Final = 4
RECOVERY_CODE_BITS: Final = _LENGTH * 5
#: What a user may type for a look-alike letter (Crockford's decoding rules).
_LOOKALIKES: Final = str.maketrans({"i": "1", "l": "1", "o": "0"})
_MAX_INPUT: Final = 64
_MIN_KEY_BYTES: Final = 32


def new_code() -> str:
    """One fresh code, grouped for reading: ``xxxx-xxxx-xxxx``."""
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(_LENGTH))
    return "-".join(raw[i : i + _GROUP] for i in range(0, _LENGTH, _GROUP))


def normalize_code(code: str) -> str | None:
    """The canonical form of what a user typed (case, spaces, dashes and
    look-alike letters forgiven), or None if it cannot be a code."""
    if len(code) > _MAX_INPUT:
        return None
    cleaned = "".join(ch for ch in code.lower() if ch not in " -\t").translate(_LOOKALIKES)
    if len(cleaned) != _LENGTH or any(ch not in _ALPHABET for ch in cleaned):
        return None
    return cleaned


def hash_code(key: bytes, user_id: str, code: str) -> str:
    """HMAC-SHA-256 hex of a normalized code, bound to its user."""
    message = user_id.encode() + b"\x00" + code.encode("ascii")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class RecoveryCodes:
    """Issue, spend and count a user's recovery codes.

    ``hash_key`` (keyword-only, at least 32 bytes) keys the stored hashes; keep
    it out of the database the hashes live in. Changing it invalidates every
    stored code.
    """

    def __init__(self, store: RecoveryCodeStore, clock: Clock, *, hash_key: bytes) -> None:
        if len(hash_key) < _MIN_KEY_BYTES:
            raise ValueError("hash_key must be at least 32 bytes")
        self._store = store
        self._clock = clock
        self._key = hash_key

    async def regenerate(self, user_id: str) -> list[str]:
        """Make a new set of 10 codes, replacing the old set; the codes are
        returned once and never stored in the clear."""
        codes: list[str] = []
        while len(codes) < RECOVERY_CODE_COUNT:
            code = new_code()
            if code not in codes:
                codes.append(code)
        hashes = [hash_code(self._key, user_id, normalize_code(code) or "") for code in codes]
        await self._store.replace(user_id, hashes, self._clock.now())
        return codes

    async def consume(self, user_id: str, code: str) -> None:
        """Spend one code.

        Raises:
            InvalidMfaCode: not a code of the user's current set, or used already.
        """
        normalized = normalize_code(code)
        if normalized is None:
            raise InvalidMfaCode()
        if not await self._store.consume(user_id, hash_code(self._key, user_id, normalized)):
            raise InvalidMfaCode()

    async def remaining(self, user_id: str) -> int:
        """How many unused codes the user has (shown on ``/account``)."""
        return await self._store.remaining(user_id)

    async def remove(self, user_id: str) -> None:
        """Delete the user's codes (last factor removed, or ``mfa-reset``)."""
        await self._store.delete(user_id)
