"""Verify keyturn access tokens in another service that knows only the issuer URL.

The public entry point for downstream services; the code lives in
:mod:`keyturn.tokens.remote`::

    from keyturn.verify import RemoteVerifier

    verifier = RemoteVerifier("https://auth.example.com", audience="https://api.example.com")
    claims = await verifier.verify(token)   # raises InvalidToken
    await verifier.aclose()

For FastAPI, see :mod:`keyturn.web.verify_dependency`.
"""

from keyturn.tokens.claims import AccessTokenClaims
from keyturn.tokens.remote import IssuerUnavailable, RemoteVerifier

__all__ = ["AccessTokenClaims", "IssuerUnavailable", "RemoteVerifier"]
