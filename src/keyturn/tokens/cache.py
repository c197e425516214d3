"""A bounded in-process cache of access tokens that already verified.

Verifying a token costs tens of microseconds (a signature check); a dictionary
lookup costs a fraction of one. :class:`VerifiedTokenCache` remembers the claims of
tokens that passed every check, keyed by the exact token string, until the token's
``exp``.

What it does **not** do: revocation. A cache hit says "this string is a genuine,
unexpired token with these claims", nothing more. The caller applies the revocation
check (``jti``, ``sid``, per-user cut-off) on every request, hit or miss, so revoking
a token never waits for the cache. Because the key is the exact string, a malleated
copy of a token (another valid encoding of the same signature) is simply a miss and
goes through full verification.
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import suppress
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from keyturn.tokens.claims import AccessTokenClaims

__all__ = ["DEFAULT_MAX_ENTRIES", "VerifiedTokenCache"]

#: About 1.1 KB per entry for a typical token (string ~0.5 KB, claims ~0.6 KB): ~110 MB full.
DEFAULT_MAX_ENTRIES: Final = 100_000


class VerifiedTokenCache:
    """Least-recently-used cache: token string -> claims, dropped at ``exp``.

    Bounded by ``max_entries``; the least recently used entry goes first. Only
    successful verifications are stored (failures are cheap to repeat and caching
    them would let garbage evict real tokens). Safe to share between threads for the
    operations it offers: a race can at worst cost a miss, never a wrong answer.
    """

    __slots__ = ("_entries", "max_entries")

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        """Raises:
        ValueError: ``max_entries`` is below 1."""
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._entries: OrderedDict[str, AccessTokenClaims] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, now: float) -> AccessTokenClaims | None:
        """The cached claims of ``token``, or None when absent or expired at ``now``."""
        claims = self._entries.get(token)
        if claims is None:
            return None
        if now >= claims.exp:
            self._entries.pop(token, None)
            return None
        with suppress(KeyError):  # evicted by another thread just now: still a valid answer
            self._entries.move_to_end(token)
        return claims

    def put(self, token: str, claims: AccessTokenClaims) -> None:
        """Remember that ``token`` verified with ``claims``, evicting the least
        recently used entry when full."""
        entries = self._entries
        entries[token] = claims
        entries.move_to_end(token)
        while len(entries) > self.max_entries:
            try:
                entries.popitem(last=False)
            except KeyError:  # emptied concurrently
                break

    def purge_expired(self, now: float) -> int:
        """Drop every entry expired at ``now`` (lookups drop them lazily anyway; call
        this from a periodic task to return their memory sooner). Returns how many."""
        expired = [token for token, claims in list(self._entries.items()) if now >= claims.exp]
        for token in expired:
            self._entries.pop(token, None)
        return len(expired)

    def discard(self, token: str) -> None:
        """Forget ``token`` (no error if it is not cached)."""
        self._entries.pop(token, None)

    def clear(self) -> None:
        """Forget everything, e.g. after signing keys were removed."""
        self._entries.clear()
