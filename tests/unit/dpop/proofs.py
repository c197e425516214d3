"""Helpers of the DPoP tests: client keys that make (and forge) proofs the way
RFC 9449 section 4.2 says clients do."""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from joserfc import jws
from joserfc.jwk import Key

from keyturn.clock import FrozenClock
from keyturn.dpop import access_token_hash

T0 = 1_800_000_000.0
URL = "https://api.example.com/resource"
NONCE_SECRET = b"n" * 32

#: Remove a member from a proof's header or claims.
DROP = object()


@dataclass
class Client:
    """A DPoP client key: signs proofs, or forgeries of them."""

    key: Key
    alg: str
    clock: FrozenClock
    jwk: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.jwk = dict(self.key.as_dict(private=False))

    @property
    def jkt(self) -> str:
        """The RFC 7638 thumbprint of this key."""
        return self.key.thumbprint()

    def proof(
        self,
        htm: str = "GET",
        htu: str = URL,
        *,
        access_token: str | None = None,
        nonce: str | None = None,
        header: Mapping[str, Any] | None = None,
        claims: Mapping[str, Any] | None = None,
        sign_with: Key | None = None,
        alg: str | None = None,
    ) -> str:
        """A proof for ``htm htu`` (``ath`` when ``access_token``), with ``header``
        and ``claims`` overriding (or, with ``DROP``, removing) members."""
        protected: dict[str, Any] = {"typ": "dpop+jwt", "alg": alg or self.alg, "jwk": self.jwk}
        payload: dict[str, Any] = {
            "jti": str(uuid.uuid4()),
            "htm": htm,
            "htu": htu,
            "iat": int(self.clock.now()),
        }
        if access_token is not None:
            payload["ath"] = access_token_hash(access_token)
        if nonce is not None:
            payload["nonce"] = nonce
        _apply(protected, header)
        _apply(payload, claims)
        return sign(protected, json.dumps(payload).encode(), sign_with or self.key)


def sign(header: dict[str, Any], payload: bytes, key: Key | None) -> str:
    """A compact JWS made by joserfc with whatever header the test wants."""
    registry = jws.JWSRegistry(algorithms=[header["alg"]], strict_check_header=False)
    return jws.serialize_compact(header, payload, key, registry=registry)  # type: ignore[arg-type]


def _apply(target: dict[str, Any], changes: Mapping[str, Any] | None) -> None:
    for name, value in (changes or {}).items():
        if value is DROP:
            target.pop(name, None)
        else:
            target[name] = value


def random_token() -> str:
    """An opaque stand-in for an access token."""
    return secrets.token_urlsafe(32)


def forge(
    header: Mapping[str, Any], claims: Mapping[str, Any], signature: bytes = b"x" * 64
) -> str:
    """A compact JWS with any header and an arbitrary (unchecked) signature, for proofs
    that must be refused before any signature is verified."""
    return ".".join(
        base64.urlsafe_b64encode(part).rstrip(b"=").decode()
        for part in (json.dumps(header).encode(), json.dumps(claims).encode(), signature)
    )
