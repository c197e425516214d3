"""The claim set of an access token, and the strict parsing it comes from.

:class:`AccessTokenClaims` is what a verified (or freshly issued) RFC 9068 token
says. The helpers below are the strict halves of verification that
:class:`~keyturn.tokens.access.TokenVerifier` runs before and after the
signature check: base64url that refuses padding and non-canonical tails, JSON
objects without duplicate members (or ``NaN``), and a claim of exactly its JSON
type. Every failure is :class:`~keyturn.errors.InvalidToken` with a ``reason``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from joserfc.util import urlsafe_b64decode

from keyturn.errors import InvalidToken

__all__ = ["AccessTokenClaims", "b64decode", "json_object", "typed_claim"]


@dataclass(frozen=True, slots=True)
class AccessTokenClaims:
    """The claims of a verified (or freshly issued) access token.

    ``sid`` is the sign-in the token belongs to (browser session or refresh family);
    empty for a client's own token (``client_credentials``: ``sub`` and
    ``client_id`` are the client, there is no sign-in, and the JWT has no ``sid``);
    ``scope`` is space-separated as in RFC 6749; ``aud`` is a tuple when the token
    carried a list. ``auth_time`` (optional in RFC 9068 section 2.2.1) is when the
    user last authenticated for that sign-in; None for tokens issued without it.
    Times are whole POSIX seconds. ``jkt`` is the ``cnf.jkt`` of a DPoP-bound
    token (RFC 9449 section 6.1): the thumbprint of the key whose proofs must
    come with it; None for a bearer token.
    """

    iss: str
    sub: str
    aud: str | tuple[str, ...]
    exp: int
    iat: int
    jti: str
    sid: str
    scope: str = ""
    roles: tuple[str, ...] = ()
    nbf: int | None = None
    client_id: str | None = None
    auth_time: int | None = None
    jkt: str | None = None
    #: RFC 8176 methods of the sign-in and the matching ``acr`` (issue #15);
    #: both left out of tokens issued without them.
    amr: tuple[str, ...] = ()
    acr: str | None = None

    @property
    def for_client(self) -> bool:
        """Whether this is a client's own token (``client_credentials``): no
        user, no sign-in; ``sub`` is the client."""
        return not self.sid

    @property
    def scopes(self) -> tuple[str, ...]:
        """``scope`` split into its space-separated values."""
        return tuple(self.scope.split())

    def to_dict(self) -> dict[str, Any]:
        """The JSON claim set, optional members only when set."""
        claims: dict[str, Any] = {
            "iss": self.iss,
            "sub": self.sub,
            "aud": list(self.aud) if isinstance(self.aud, tuple) else self.aud,
            "exp": self.exp,
            "iat": self.iat,
            "jti": self.jti,
            "scope": self.scope,
            "roles": list(self.roles),
        }
        if self.sid:
            claims["sid"] = self.sid
        if self.nbf is not None:
            claims["nbf"] = self.nbf
        if self.client_id is not None:
            claims["client_id"] = self.client_id
        if self.auth_time is not None:
            claims["auth_time"] = self.auth_time
        if self.jkt is not None:
            claims["cnf"] = {"jkt": self.jkt}
        if self.amr:
            claims["amr"] = list(self.amr)
        if self.acr is not None:
            claims["acr"] = self.acr
        return claims


def typed_claim(
    payload: dict[str, Any],
    name: str,
    kind: type | tuple[type, ...],
    *,
    required: bool = True,
    allow_empty: bool = False,
) -> Any:
    """``payload[name]`` if it has JSON type ``kind`` (never a bool for ``int``) and,
    unless ``allow_empty``, is not empty; None for an absent optional claim."""
    value = payload.get(name)
    if value is None:
        if required or name in payload:
            raise InvalidToken(f"missing_claim:{name}" if required else f"invalid_claim:{name}")
        return None
    if not isinstance(value, kind) or value is True or value is False:
        raise InvalidToken(f"invalid_claim:{name}")
    if not allow_empty and not value and value != 0:
        raise InvalidToken(f"invalid_claim:{name}")
    return value


def b64decode(segment: str) -> bytes:
    """Strict base64url (joserfc's decoder refuses padding and non-canonical tails)."""
    try:
        return urlsafe_b64decode(segment.encode("ascii"))
    except ValueError:  # binascii.Error is a ValueError
        raise InvalidToken("malformed") from None


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise InvalidToken("duplicate_member")
    return result


def _reject_constant(name: str) -> Any:
    raise InvalidToken("malformed")  # NaN, Infinity: not JSON


#: Built once: ``json.loads`` with hooks would build a new decoder on every call.
_STRICT_JSON = json.JSONDecoder(
    object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
)


def json_object(raw: bytes) -> dict[str, Any]:
    """Decoded header or payload bytes: a UTF-8 JSON object with unique member names."""
    try:
        value = _STRICT_JSON.decode(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # UnicodeDecodeError, JSONDecodeError
        raise InvalidToken("malformed") from None
    if not isinstance(value, dict):
        raise InvalidToken("malformed")
    return value
