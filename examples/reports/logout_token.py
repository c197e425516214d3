"""Verifying a back-channel logout token, as any relying party would.

OpenID Connect Back-Channel Logout 1.0, section 2.6: the OpenID Provider POSTs a
``logout_token`` (a signed JWT) to the app; before it ends anything, the app
checks

1. the signature, against the issuer's JWK Set, with the algorithm the key
   itself names (``alg`` of the JWK; never ``none``, never one the token picks);
2. ``iss`` (the issuer), ``aud`` (this app's client id), ``iat`` and ``exp``,
   as for an ID token (60 s of clock leeway);
3. that ``sub``, ``sid`` or both are present;
4. that ``events`` holds ``http://schemas.openid.net/event/backchannel-logout``
   with a JSON object as its value;
5. that there is no ``nonce`` (so an ID token can never pass for a logout token);
6. the header's ``typ``, when present, is ``logout+jwt`` (section 4.1, explicit
   typing against cross-JWT confusion);
7. that its ``jti`` was not seen before (optional in the spec, kept here).

Signatures and claims are verified with joserfc (the JOSE library Authlib
itself builds on); the keys come from a callable, so this module fetches
nothing itself and knows nothing of keyturn: the reports app hands it Authlib's
cached JWK Set, which Authlib re-fetches when a ``kid`` is unknown (key rotation).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any, Final

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

__all__ = [
    "LOGOUT_EVENT",
    "KeysUnavailable",
    "LogoutToken",
    "LogoutTokenError",
    "LogoutTokenVerifier",
]

LOGOUT_EVENT: Final = "http://schemas.openid.net/event/backchannel-logout"
#: The asymmetric algorithms an OpenID Provider signs ID and logout tokens with.
SIGNING_ALGORITHMS: Final = frozenset({"RS256", "ES256", "EdDSA"})
_LOGOUT_TYPES: Final = frozenset({"logout+jwt", "application/logout+jwt"})
#: A logout token is a few hundred bytes; refuse anything absurd before parsing.
MAX_TOKEN_LENGTH: Final = 16_384
#: Seconds a key refetch for an unknown ``kid`` is not repeated (a stream of forged
#: tokens with random kids must not turn into a stream of JWKS requests).
REFETCH_INTERVAL: Final = 30.0

#: Returns the issuer's JWK Set as a dict; ``True`` asks for a fresh copy.
JwksSource = Callable[[bool], Awaitable[dict[str, Any]]]


class LogoutTokenError(ValueError):
    """The token is not a valid logout token for this app (answer 400)."""

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description


class KeysUnavailable(RuntimeError):
    """The issuer's keys could not be fetched (answer 5xx: the issuer retries)."""


@dataclass(frozen=True, slots=True)
class LogoutToken:
    """What a verified logout token says: end session ``sid`` of ``sub`` (either
    may be None, never both)."""

    sub: str | None
    sid: str | None
    jti: str
    exp: int


class LogoutTokenVerifier:
    """Checks logout tokens of ``issuer`` for the client ``client_id``.

    Args:
        issuer: the expected ``iss``.
        client_id: the expected ``aud``.
        jwks: where the issuer's keys come from (see :data:`JwksSource`).
        algorithms: the algorithms accepted (the issuer's
            ``id_token_signing_alg_values_supported``, within
            :data:`SIGNING_ALGORITHMS`).
        leeway: seconds of clock skew allowed on ``iat`` and ``exp``.
        clock: the time, in seconds.
    """

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        jwks: JwksSource,
        algorithms: Collection[str] = SIGNING_ALGORITHMS,
        leeway: int = 60,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self._jwks = jwks
        self.algorithms = frozenset(algorithms) & SIGNING_ALGORITHMS
        self.leeway = leeway
        self._clock = clock
        self._refetched_at = float("-inf")
        self._seen: dict[str, int] = {}  # jti -> exp, until exp has passed

    async def verify(self, value: str) -> LogoutToken:
        """The verified token.

        Raises:
            LogoutTokenError: any check of the module doc fails.
            KeysUnavailable: the JWK Set cannot be fetched.
        """
        if not value or len(value) > MAX_TOKEN_LENGTH:
            raise LogoutTokenError("logout_token is missing or too long")
        token = await self._verified_jwt(value)
        typ = token.header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.lower() not in _LOGOUT_TYPES):
            raise LogoutTokenError("the token's typ is not logout+jwt")
        claims = token.claims
        self._check_registered_claims(claims)
        events = claims.get("events")
        if not isinstance(events, dict) or not isinstance(events.get(LOGOUT_EVENT), dict):
            raise LogoutTokenError(f"the token's events claim does not hold {LOGOUT_EVENT}")
        if "nonce" in claims:
            raise LogoutTokenError("a logout token must not carry a nonce")
        sub, sid = claims.get("sub"), claims.get("sid")
        if sub is None and sid is None:
            raise LogoutTokenError("the token names neither sub nor sid")
        if sid is not None and (not isinstance(sid, str) or not sid):
            raise LogoutTokenError("the token's sid is not a string")
        self._remember(claims["jti"], int(claims["exp"]))
        return LogoutToken(sub=sub, sid=sid, jti=claims["jti"], exp=int(claims["exp"]))

    async def _verified_jwt(self, value: str) -> jwt.Token:
        header = _unverified_header(value)
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in self.algorithms:
            raise LogoutTokenError(f"the token's alg {alg!r} is not accepted")
        if not isinstance(kid, str) or not kid:
            raise LogoutTokenError("the token names no key (kid)")
        jwk = await self._key(kid)
        if jwk.get("alg", alg) != alg:  # the key pins its algorithm
            raise LogoutTokenError("the token's alg is not its key's")
        try:
            return jwt.decode(value, KeySet.import_key_set({"keys": [jwk]}), algorithms=[alg])
        except JoseError:
            raise LogoutTokenError("the token's signature does not verify") from None
        except ValueError:  # a JWK joserfc cannot import, or a malformed segment
            raise LogoutTokenError("the token cannot be verified") from None

    async def _key(self, kid: str) -> dict[str, Any]:
        """The issuer's JWK ``kid``; the set is fetched again (at most every
        :data:`REFETCH_INTERVAL` seconds) when the key is not in the cached one."""
        found = _find(await self._fetch(force=False), kid)
        if found is None and self._clock() - self._refetched_at >= REFETCH_INTERVAL:
            self._refetched_at = self._clock()
            found = _find(await self._fetch(force=True), kid)
        if found is None:
            raise LogoutTokenError("the token is not signed by a key of the issuer")
        return found

    async def _fetch(self, *, force: bool) -> dict[str, Any]:
        try:
            return await self._jwks(force)
        except Exception as exc:  # any network or parse failure is the same outage
            raise KeysUnavailable(f"the issuer's JWK Set cannot be fetched: {exc}") from exc

    def _check_registered_claims(self, claims: dict[str, Any]) -> None:
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self._clock()),
            leeway=self.leeway,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.client_id},
            iat={"essential": True},
            exp={"essential": True},
            jti={"essential": True},
        )
        try:
            registry.validate(claims)
        except JoseError as exc:
            raise LogoutTokenError(f"the token's claims are not valid: {exc}") from None
        if claims["jti"] in self._seen:
            raise LogoutTokenError("this logout token (jti) was received before")

    def _remember(self, jti: str, exp: int) -> None:
        now = self._clock()
        for old in [key for key, until in self._seen.items() if until + self.leeway < now]:
            del self._seen[old]
        self._seen[jti] = exp


def _unverified_header(value: str) -> dict[str, Any]:
    """The JOSE header, only to pick the key (joserfc verifies it all after)."""
    try:
        header = jws.extract_compact(value.encode("ascii")).headers()
    except (JoseError, ValueError, UnicodeError):
        raise LogoutTokenError("logout_token is not a compact JWS") from None
    if not isinstance(header, dict):
        raise LogoutTokenError("logout_token is not a compact JWS")
    return header


def _find(jwks: dict[str, Any], kid: str) -> dict[str, Any] | None:
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    for key in keys if isinstance(keys, list) else []:
        if isinstance(key, dict) and key.get("kid") == kid and key.get("use", "sig") == "sig":
            return key
    return None
