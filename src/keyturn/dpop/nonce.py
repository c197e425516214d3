"""Server-provided DPoP nonces (RFC 9449 sections 8 and 9), stateless and shared.

A nonce is ``base64url(HMAC-SHA256(secret, label || window counter))``, where the
counter is ``floor(now / window)``. Nothing is stored: every instance that holds the
same secret computes the same nonce, so a nonce handed out by one instance is
accepted by all of them. A proof may carry the nonce of the current window or of
the previous one (so a nonce lives between one and two windows); when it carries
the previous one the server should send the current one in ``DPoP-Nonce`` with its
answer (section 8.2), so clients move on without an error round trip.

Nonces are unpredictable without the secret (section 8: "MUST be unpredictable") and
say nothing about the server. Secrets rotate like a key ring: the last one signs,
every one listed verifies, so a new secret can be rolled out without refusing the
nonces already handed out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from typing import Final, Literal

from keyturn.clock import Clock

__all__ = ["DEFAULT_NONCE_WINDOW", "MIN_SECRET_BYTES", "DpopNonces", "NonceState"]

#: Seconds per nonce window; a nonce is accepted for one to two windows.
DEFAULT_NONCE_WINDOW: Final = 300
MIN_SECRET_BYTES: Final = 32
#: Longer claimed nonces are refused without computing anything.
MAX_NONCE_LENGTH: Final = 128

_LABEL: Final = b"keyturn dpop-nonce v1\0"

#: How a presented nonce compares: of this window, of the previous one, or neither.
NonceState = Literal["current", "previous", "invalid"]
_AGES: Final[tuple[tuple[int, NonceState], ...]] = ((0, "current"), (1, "previous"))


class DpopNonces:
    """Issues and checks the server's DPoP nonces; see the module docstring.

    Args:
        secrets: one secret, or several oldest to newest: the newest signs, all
            verify. Each at least 32 random bytes, shared by every instance.
        clock: the time source for the window counter.
        window: seconds per window.

    Raises:
        ValueError: no secret, a secret shorter than 32 bytes, or ``window`` < 1.
    """

    __slots__ = ("_cached", "_clock", "_secrets", "_window")

    def __init__(
        self, secrets: bytes | Sequence[bytes], clock: Clock, *, window: int = DEFAULT_NONCE_WINDOW
    ) -> None:
        keys = (secrets,) if isinstance(secrets, bytes) else tuple(secrets)
        if not keys:
            raise ValueError("at least one nonce secret is needed")
        if any(len(key) < MIN_SECRET_BYTES for key in keys):
            raise ValueError(f"nonce secrets must be at least {MIN_SECRET_BYTES} bytes")
        if window < 1:
            raise ValueError("window must be at least 1 second")
        self._secrets = keys
        self._clock = clock
        self._window = window
        self._cached: tuple[int, str] = (-1, "")

    def __repr__(self) -> str:
        return f"DpopNonces(secrets=<{len(self._secrets)} hidden>, window={self._window})"

    @property
    def window(self) -> int:
        """Seconds per window."""
        return self._window

    def current(self) -> str:
        """The nonce of the current window, to send in ``DPoP-Nonce``."""
        counter = self._counter()
        cached_counter, nonce = self._cached
        if cached_counter != counter:
            nonce = _nonce(self._secrets[-1], counter)
            self._cached = (counter, nonce)
        return nonce

    def check(self, nonce: object) -> NonceState:
        """Whether ``nonce`` is this window's, the previous window's, or neither
        (anything not a string of ours, including a forged or older one)."""
        if not isinstance(nonce, str) or not 0 < len(nonce) <= MAX_NONCE_LENGTH:
            return "invalid"
        presented = nonce.encode("ascii", "replace")
        counter = self._counter()
        for age, state in _AGES:
            for secret in reversed(self._secrets):
                expected = _nonce(secret, counter - age).encode()
                if hmac.compare_digest(presented, expected):
                    return state
        return "invalid"

    def _counter(self) -> int:
        return int(self._clock.now() // self._window)


def _nonce(secret: bytes, counter: int) -> str:
    digest = hmac.new(secret, _LABEL + str(counter).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
