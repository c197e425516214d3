"""The two identifiers of a browser session: the secret ID and the public handle.

The secret session ID is 256 bits from :func:`secrets.token_urlsafe`: it goes
into the cookie and nowhere else. The store only ever sees its SHA-256
(:func:`hash_secret`), so a dump of the store grants nothing. The handle is a
separate public random id for listing and revoking the sign-in; it is
unguessable too, so handles cannot be enumerated.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Final, TypeGuard

__all__ = [
    "hash_secret",
    "is_handle",
    "is_secret",
    "new_handle",
    "new_secret",
]

_SECRET_BYTES: Final = 32  # 256 bits; token_urlsafe gives 43 base64url characters
_HANDLE_BYTES: Final = 12  # 16 base64url characters
_SECRET_FORMAT: Final = re.compile(r"[A-Za-z0-9_-]{43}")
_HANDLE_FORMAT: Final = re.compile(r"[A-Za-z0-9_-]{16}")


def new_secret() -> str:
    """A fresh secret session ID (never taken from the client)."""
    return secrets.token_urlsafe(_SECRET_BYTES)


def new_handle() -> str:
    """A fresh public handle, never starting with ``-``: operators paste handles into
    ``keyturn session revoke ID``, where a leading ``-`` reads as an option. (One
    value in 64 is drawn again; 95.9 of the 96 random bits remain.)"""
    while True:
        handle = secrets.token_urlsafe(_HANDLE_BYTES)
        if not handle.startswith("-"):
            return handle


def hash_secret(secret: str) -> str:
    """The store key of a secret session ID: SHA-256, hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def is_secret(value: object) -> TypeGuard[str]:
    """Whether ``value`` has the form of a secret session ID (checked before any
    store call, so garbage costs nothing)."""
    return isinstance(value, str) and _SECRET_FORMAT.fullmatch(value) is not None


def is_handle(value: object) -> TypeGuard[str]:
    """Whether ``value`` has the form of a session handle."""
    return isinstance(value, str) and _HANDLE_FORMAT.fullmatch(value) is not None
