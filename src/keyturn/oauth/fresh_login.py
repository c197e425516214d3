"""``prompt=login``: a tamper-proof "sign in again after this time" marker.

When ``/oauth/authorize`` sends the browser to sign in for ``prompt=login``, the
way back carries ``kt_login=<unix time>.<HMAC-SHA256>`` over that time and the
request's PKCE challenge, under a key derived from the key-encryption key. A
session whose ``auth_time`` is not older than the marker satisfies the prompt;
reloading the original URL (no marker) or forging one does not. Nothing is
stored, and a marker is bound to one authorization request (its challenge) and
lives 15 minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from keyturn.clock import Clock

__all__ = ["FRESH_LOGIN_PARAMETER", "FreshLoginMarker"]

#: The query parameter that carries a :class:`FreshLoginMarker` back from ``/login``.
FRESH_LOGIN_PARAMETER = "kt_login"
#: How long a fresh-login marker stays usable, in seconds.
_MARKER_TTL = 900
_MARKER = re.compile(r"([0-9]{1,12})\.([0-9a-f]{64})")


class FreshLoginMarker:
    """A tamper-proof "sign in again after this time" for ``prompt=login``.

    ``make(challenge)`` is ``<unix time>.<HMAC-SHA256(key, time, challenge)>``;
    :meth:`since` returns the time if the marker is genuine, for this PKCE
    challenge, and under 15 minutes old.
    """

    def __init__(self, key: bytes, clock: Clock) -> None:
        self._key = key
        self.clock = clock

    def _mac(self, issued: int, challenge: str) -> str:
        message = f"{issued}\x00{challenge}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def make(self, challenge: str) -> str:
        """A marker for a request with this ``code_challenge``, issued now."""
        issued = int(self.clock.now())
        return f"{issued}.{self._mac(issued, challenge)}"

    def since(self, marker: str | None, challenge: str) -> float | None:
        """When the marker was issued, or None if it is absent, forged, for
        another request or too old."""
        found = _MARKER.fullmatch(marker) if isinstance(marker, str) else None
        if found is None:
            return None
        issued = int(found.group(1))
        if not hmac.compare_digest(found.group(2), self._mac(issued, challenge)):
            return None
        if not 0 <= self.clock.now() - issued <= _MARKER_TTL:
            return None
        return float(issued)
