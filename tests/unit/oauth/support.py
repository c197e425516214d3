"""Shared test data for the keyturn.oauth unit tests: a client record, the
RFC 7636 Appendix B PKCE vector, and a valid authorization request."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

#: RFC 7636 Appendix B.
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
ISSUER = "https://id.example.com"


@dataclass(frozen=True)
class FakeClient:
    """The fields the parser reads from a client record."""

    id: str = "spa"
    redirect_uris: Sequence[str] = (
        "https://app.example.com/cb",
        "https://app.example.com/cb2?tenant=7",
        "http://127.0.0.1/callback",
        "http://[::1]/callback",
    )
    allowed_scopes: Collection[str] = ("openid", "profile", "email", "offline_access")
    grant_types: Collection[str] = ("authorization_code", "refresh_token")


def good_params(**overrides: str) -> dict[str, str]:
    """A valid authorization request for FakeClient, with ``overrides``."""
    params = {
        "response_type": "code",
        "client_id": "spa",
        "redirect_uri": "https://app.example.com/cb",
        "scope": "openid profile",
        "state": "xyz",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return params
