"""Where a DPoP proof's ``jti`` is remembered, so that a proof is accepted once.

RFC 9449 section 11.1: a server stores the ``jti`` of every proof it accepts, in the
context of the target URI, for as long as the proof would be accepted, and refuses a
proof whose ``jti`` it has seen. :class:`ReplayCache` is the one operation that
needs, an atomic "add unless present, with a TTL"; :mod:`keyturn.dpop.memory` is the
in-process reference, :mod:`keyturn.dpop.redis` the one shared by every instance.

Entries are named by :func:`replay_key`, a SHA-256 over the key thumbprint, the
normalised ``htu`` and the ``jti``: fixed length whatever the client sent, nothing
of the proof readable in the store, and one client cannot use up another key's
``jti`` values.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

__all__ = ["ReplayCache", "replay_key"]


class ReplayCache(Protocol):
    """Remembers proof identifiers for a while; see the module docstring."""

    async def add(self, key: str, ttl: int) -> bool:
        """Record ``key`` for ``ttl`` seconds unless it is already recorded.

        Returns True when ``key`` was new (the proof is fresh), False when it was
        seen within its TTL (a replay). Atomic: of two concurrent calls with the same
        key, exactly one returns True.

        Raises:
            StoreUnavailable: the cache cannot answer (or is full); the caller must
                refuse the proof rather than accept it unchecked.
        """
        ...


def replay_key(jkt: str, htu: str, jti: str) -> str:
    """The cache key of one proof: hex SHA-256 of the thumbprint, the normalised
    ``htu`` and the ``jti``, NUL-separated (none of them may contain a NUL)."""
    material = "\0".join((jkt, htu, jti)).encode()
    return hashlib.sha256(material).hexdigest()
