"""Verify keyturn access tokens in another service that knows only the issuer URL.

The public entry point for downstream services; the code lives in
:mod:`keyturn.tokens.remote`::

    from keyturn.verify import RemoteVerifier

    verifier = RemoteVerifier("https://auth.example.com", audience="https://api.example.com")
    claims = await verifier.verify(token)   # raises InvalidToken
    await verifier.aclose()

DPoP-bound tokens (RFC 9449) come as ``Authorization: DPoP <token>`` with a
``DPoP`` proof header; :meth:`RemoteVerifier.verify` refuses them (a copied
token must not work as a bearer token), :meth:`RemoteVerifier.verify_dpop`
checks the token and the proof::

    claims = await verifier.verify_dpop(token, request.headers.getlist("dpop"),
                                        method="GET", url="https://api.example.com/orders")

Several instances of a service share the proofs' replay cache through Redis:
``RemoteVerifier(..., dpop=DpopVerifier(RedisReplayCache.from_url(url), SystemClock()))``.

For FastAPI, see :mod:`keyturn.web.verify_dependency`.
"""

from keyturn.dpop import DpopVerifier, MemoryReplayCache
from keyturn.dpop.redis import RedisReplayCache
from keyturn.tokens.claims import AccessTokenClaims
from keyturn.tokens.remote import IssuerUnavailable, RemoteVerifier

__all__ = [
    "AccessTokenClaims",
    "DpopVerifier",
    "IssuerUnavailable",
    "MemoryReplayCache",
    "RedisReplayCache",
    "RemoteVerifier",
]
