"""Builds this process's :class:`~keyturn.dpop.DpopVerifier` from the settings (#16).

One verifier per process (:attr:`Keyturn.dpop <keyturn.runtime.Keyturn.dpop>`):

- the ``jti`` replay cache is Redis when ``--redis-url`` is set (``SET NX EX``, so
  a proof accepted by one instance is refused by every other), else in process;
- with ``--dpop-nonce``, server nonces are HMACs over a time window keyed by a
  secret derived from the key-encryption key (HKDF, ``keyturn dpop-nonce``): every
  instance computes the same nonces without sharing any state, and a nonce handed
  out by one is accepted by all;
- ``iat`` may be ``--dpop-max-age`` seconds old and ``--clock-leeway`` ahead.

The public URL a proof's ``htu`` must name is the configured issuer's scheme and
authority with the request's raw (still percent-encoded) path: behind a proxy the
Host the server sees is not the one the client signed.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Final
from urllib.parse import quote, urlsplit

from keyturn.clock import Clock
from keyturn.dpop import DpopNonces, DpopVerifier, MemoryReplayCache, ReplayCache
from keyturn.settings import Settings

if TYPE_CHECKING:
    from keyturn.stores.redis import RedisConnection

__all__ = ["NONCE_KEY_PURPOSE", "make_dpop_verifier", "public_origin", "request_url"]

#: The HKDF purpose of the nonce secret (the info is ``keyturn dpop-nonce``).
NONCE_KEY_PURPOSE: Final = "dpop-nonce"


def make_dpop_verifier(
    settings: Settings,
    clock: Clock,
    *,
    redis: RedisConnection | None,
    nonce_secret: bytes | None,
) -> DpopVerifier:
    """The verifier for ``settings``; ``redis`` is the shared connection when
    ``--redis-url`` is set, ``nonce_secret`` the derived secret (needed only with
    ``--dpop-nonce``).

    Raises:
        ValueError: ``--dpop-nonce`` without a nonce secret.
    """
    cache: ReplayCache
    if redis is not None:
        from keyturn.dpop.redis import RedisReplayCache

        cache = RedisReplayCache(redis.client, unavailable=redis.unavailable)
    else:
        cache = MemoryReplayCache(clock, max_entries=settings.dpop_replay_cache_entries)
    nonces = None
    if settings.dpop_nonce:
        if nonce_secret is None:
            raise ValueError("--dpop-nonce needs the key-encryption key's nonce secret")
        nonces = DpopNonces(nonce_secret, clock)
    return DpopVerifier(
        cache,
        clock,
        max_age=settings.dpop_max_age,
        clock_skew=settings.clock_leeway,
        nonces=nonces,
    )


def public_origin(settings: Settings) -> str:
    """``scheme://authority`` of the configured issuer, the origin clients sign."""
    return _origin(settings.public_issuer)


@functools.lru_cache(maxsize=64)
def _origin(issuer: str) -> str:
    """``scheme://authority`` of ``issuer``; cached, as every DPoP request asks."""
    parts = urlsplit(issuer)
    return f"{parts.scheme}://{parts.netloc}"


def request_url(origin: str, raw_path: bytes | None, path: str) -> str:
    """The absolute URL of a request for the ``htu`` check: ``origin`` plus the raw
    path as received (``path``, re-encoded, when the server gives no raw path)."""
    if raw_path:
        return origin + raw_path.decode("latin-1")
    return origin + quote(path, safe="/:@!$&'()*+,;=-._~%")
