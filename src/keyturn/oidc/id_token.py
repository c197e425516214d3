"""OpenID Connect ID tokens (OIDC Core 1.0 section 2), framework-free.

An ID token tells a relying party who signed in, when and how: ``iss``,
``sub``, ``aud`` (the client), ``exp``, ``iat``, ``auth_time``, ``nonce``
(echoed from the authorization request, when sent), ``at_hash`` (section
3.1.3.6: the left half of the hash of the access token issued beside it), ``sid``
(the browser session's public handle, as Back-Channel Logout 1.0 sends it back),
``amr`` and ``acr`` when the sign-in recorded its methods, and ``email`` /
``email_verified`` with the ``email`` scope.

It is signed with the client's ``id_token_alg`` (RS256 unless registered
otherwise, section 15.1: RS256 is mandatory to implement) by the newest active key
of that algorithm in the ring, with ``typ: JWT``, so it can never pass for an
RFC 9068 access token (``typ: at+jwt``) and the other way round. Its lifetime is
the access-token TTL: key retirement windows are sized by that.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Final

from joserfc import jws

from keyturn.errors import ConfigurationError
from keyturn.keys.records import ALGORITHMS
from keyturn.keys.ring import KeyRing
from keyturn.mfa.amr import acr_for

__all__ = [
    "DEFAULT_ID_TOKEN_ALG",
    "ID_TOKEN_TYPE",
    "IdTokenClaims",
    "at_hash",
    "registry_for",
    "sign_id_token",
]

#: The algorithm of an ID token when the client registered none (SPEC, OIDC Core 15.1).
DEFAULT_ID_TOKEN_ALG: Final = "RS256"  # noqa: S105 (an algorithm name)
ID_TOKEN_TYPE: Final = "JWT"  # noqa: S105 (a media type)

_REGISTRIES: Final[dict[str, jws.JWSRegistry]] = {
    alg: jws.JWSRegistry(algorithms=[alg]) for alg in ALGORITHMS if alg != "HS256"
}


def registry_for(alg: str) -> jws.JWSRegistry:
    """joserfc's registry allowing exactly ``alg`` (asymmetric algorithms only).

    Raises:
        ConfigurationError: ``alg`` is not RS256, ES256 or EdDSA.
    """
    try:
        return _REGISTRIES[alg]
    except KeyError:
        raise ConfigurationError(f"ID tokens cannot be signed with {alg!r}") from None


def at_hash(access_token: str, alg: str) -> str:
    """``at_hash`` / ``c_hash`` of OIDC Core 3.1.3.6: base64url of the left half of
    the hash that goes with ``alg`` (SHA-256 for RS256/ES256, SHA-512 for EdDSA
    over Ed25519), over the ASCII token."""
    digest = (hashlib.sha512 if alg == "EdDSA" else hashlib.sha256)(
        access_token.encode("ascii")
    ).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class IdTokenClaims:
    """What an ID token says about one sign-in (the inputs, not yet signed).

    ``email_verified`` is None when the account store does not track it: the
    claim is then left out rather than guessed.
    """

    issuer: str
    subject: str
    client_id: str
    auth_time: float
    session_handle: str
    scopes: Collection[str]
    nonce: str | None = None
    amr: Sequence[str] = ()
    email: str | None = None
    email_verified: bool | None = None

    def payload(
        self, *, now: float, ttl: int, access_token: str | None, alg: str
    ) -> dict[str, Any]:
        """The claim set, issued at ``now`` and valid for ``ttl`` seconds."""
        iat = int(now)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": self.subject,
            "aud": self.client_id,
            "azp": self.client_id,
            "exp": iat + ttl,
            "iat": iat,
            "auth_time": int(self.auth_time),
            "sid": self.session_handle,
        }
        if self.nonce is not None:
            claims["nonce"] = self.nonce
        if access_token is not None:
            claims["at_hash"] = at_hash(access_token, alg)
        if self.amr:
            claims["amr"] = list(self.amr)
            claims["acr"] = acr_for(tuple(self.amr))
        if "email" in self.scopes and self.email is not None:
            claims["email"] = self.email
            if self.email_verified is not None:
                claims["email_verified"] = self.email_verified
        return claims


def sign_id_token(
    claims: IdTokenClaims,
    ring: KeyRing,
    *,
    alg: str,
    now: float,
    ttl: int,
    access_token: str | None,
) -> str:
    """Sign ``claims`` with the newest active ``alg`` key of ``ring``.

    Raises:
        ConfigurationError: the ring has no active key of ``alg`` (call
            :meth:`keyturn.keys.rotation.KeyManager.ensure` first), or ``alg`` is
            HS256 (never for ID tokens: the relying party could not verify it
            from the JWKS).
    """
    if alg not in _REGISTRIES:
        raise ConfigurationError(f"ID tokens cannot be signed with {alg!r}")
    record, key, _ = ring.signer(alg)
    header = {"typ": ID_TOKEN_TYPE, "alg": record.alg, "kid": record.kid}
    body = claims.payload(now=now, ttl=ttl, access_token=access_token, alg=record.alg)
    payload = json.dumps(body, separators=(",", ":")).encode()
    return jws.serialize_compact(header, payload, key, registry=_REGISTRIES[record.alg])
