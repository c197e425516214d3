"""Access tokens: RFC 9068 JWTs, issued and verified.

(Over 300 lines: the issuer and the verifier, whose header policy and
registries are one; the claims and strict parsing are in :mod:`.claims`.)

:class:`TokenIssuer` signs with the key ring's newest key; :class:`TokenVerifier`
checks a bearer token and returns its :class:`AccessTokenClaims`, or raises
:class:`~keyturn.errors.InvalidToken` with a ``reason`` for logs. Every failure is
that one exception, whatever the input.

Division of labour: joserfc parses and verifies the JWS. keyturn first validates the
*input* strictly (size, exactly three base64url segments, a header that is a UTF-8
JSON object without duplicate members), applies its header policy (``typ``, ``alg``
pinned to the key named by ``kid``, no ``crit``, ``b64``, ``jwk``, ``jku``, ``x5u``,
``x5c``, ``x5t``), and only then hands the token to ``joserfc.jws.deserialize_compact``
with that one key and a registry allowing only that key's algorithm. After the
signature holds, the payload is parsed as strictly as the header and the claim rules
run (every claim present with its exact JSON type; ``iss``, ``aud``, ``exp``, ``nbf``,
``iat`` with the leeway). Signing goes through ``joserfc.jws.serialize_compact``.
See ``docs/tokens.md``.

Revocation is not checked here: the caller applies it to every verified token,
cached or not (see :mod:`keyturn.tokens.cache`).
"""

from __future__ import annotations

import json
import re
import secrets
import warnings
from collections.abc import Sequence
from typing import Any, Final

from joserfc import jws
from joserfc.errors import BadSignatureError, ExceededSizeError, JoseError, SecurityWarning

from keyturn.clock import Clock
from keyturn.errors import InvalidToken
from keyturn.keys.records import ALGORITHMS
from keyturn.keys.ring import KeyRing, VerificationKey
from keyturn.mfa.amr import acr_for
from keyturn.settings import Settings
from keyturn.tokens.cache import DEFAULT_MAX_ENTRIES, VerifiedTokenCache
from keyturn.tokens.claims import AccessTokenClaims, b64decode, json_object, typed_claim

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "MAX_TOKEN_LENGTH",
    "TokenIssuer",
    "TokenVerifier",
    "verify_signature",
]

#: The ``typ`` header of our access tokens (RFC 9068 section 2.1).
ACCESS_TOKEN_TYPE: Final = "at+jwt"  # noqa: S105 (a media type, not a secret)
#: Longer strings are refused before any parsing (our tokens are well under 1 KB).
MAX_TOKEN_LENGTH: Final = 8192

_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_ACCESS_TOKEN_TYPES = frozenset({ACCESS_TOKEN_TYPE, "application/" + ACCESS_TOKEN_TYPE})
_ALLOWED_HEADERS = frozenset({"typ", "alg", "kid"})
#: Headers that would name key material: never trusted (RFC 8725 section 3.10).
_KEY_HEADERS = frozenset({"jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256"})

#: One joserfc registry per algorithm, each allowing only that algorithm: the pin is
#: enforced by joserfc too, not only by our pre-check. Built once (a registry per call
#: would cost a dict copy per token).
_REGISTRIES: Final[dict[str, jws.JWSRegistry]] = {
    alg: jws.JWSRegistry(algorithms=[alg]) for alg in ALGORITHMS
}

# joserfc warns on every use of the JOSE name "EdDSA" (RFC 9864 prefers "Ed25519").
# SPEC fixes the name EdDSA, so exactly that warning is silenced, nothing else.
warnings.filterwarnings(
    "ignore", message=re.escape("EdDSA is deprecated via RFC 9864"), category=SecurityWarning
)


class TokenIssuer:
    """Signs access tokens with the key ring's current signing key.

    The header is exactly ``{"typ":"at+jwt","alg":...,"kid":...}``; ``iss`` and
    ``aud`` come from ``settings.public_issuer`` and ``settings.token_audience``.
    """

    __slots__ = ("_clock", "_keyring", "_settings")

    def __init__(self, keyring: KeyRing, settings: Settings, clock: Clock) -> None:
        self._keyring = keyring
        self._settings = settings
        self._clock = clock

    def use_keyring(self, keyring: KeyRing) -> None:
        """Sign with ``keyring`` from now on (after a rotation)."""
        self._keyring = keyring

    def issue(
        self,
        user_id: str,
        *,
        sid: str,
        roles: Sequence[str] = (),
        scope: str = "",
        client_id: str | None = None,
        ttl: int | None = None,
        auth_time: float | None = None,
        jkt: str | None = None,
        amr: Sequence[str] = (),
    ) -> tuple[str, AccessTokenClaims]:
        """A signed access token for ``user_id`` in sign-in ``sid``, and its claims.

        ``auth_time`` is when the user authenticated for that sign-in (the
        ``auth_time`` claim, whole seconds); None leaves the claim out. ``jkt``
        binds the token to a DPoP key (``cnf.jkt``, RFC 9449 section 6.1).
        ``auth_time`` claim, whole seconds); None leaves the claim out.
        ``amr`` (RFC 8176) adds the ``amr`` claim and its ``acr``; empty leaves
        both out.

        ``ttl`` may shorten the lifetime below ``settings.access_token_ttl`` but never
        lengthen it: key retirement windows are sized by that setting.

        Raises:
            ValueError: ``ttl`` outside ``1..settings.access_token_ttl``.
            ConfigurationError: the ring has no active signing key.
        """
        lifetime = self._settings.access_token_ttl if ttl is None else ttl
        if not 1 <= lifetime <= self._settings.access_token_ttl:
            raise ValueError(f"ttl must be between 1 and {self._settings.access_token_ttl}")
        record, key, _ = self._keyring.signer()
        iat = int(self._clock.now())
        claims = AccessTokenClaims(
            iss=self._settings.public_issuer,
            sub=user_id,
            aud=self._settings.token_audience,
            exp=iat + lifetime,
            iat=iat,
            jti=secrets.token_urlsafe(16),
            sid=sid,
            scope=scope,
            roles=tuple(roles),
            client_id=client_id,
            auth_time=None if auth_time is None else int(auth_time),
            jkt=jkt,
            amr=tuple(amr),
            acr=acr_for(tuple(amr)) if amr else None,
        )
        header = {"typ": ACCESS_TOKEN_TYPE, "alg": record.alg, "kid": record.kid}
        payload = json.dumps(claims.to_dict(), separators=(",", ":")).encode()
        token = jws.serialize_compact(header, payload, key, registry=_REGISTRIES[record.alg])
        return token, claims


class TokenVerifier:
    """Verifies access tokens against a key ring; see the module docstring.

    ``cache_entries`` bounds the :class:`~keyturn.tokens.cache.VerifiedTokenCache`
    consulted before any parsing; 0 turns the cache off.
    """

    __slots__ = ("_audience", "_cache", "_clock", "_issuer", "_keyring", "_leeway")

    def __init__(
        self,
        keyring: KeyRing,
        settings: Settings,
        clock: Clock,
        *,
        cache_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        self._keyring = keyring
        self._clock = clock
        self._issuer = settings.public_issuer
        self._audience = settings.token_audience
        self._leeway = float(settings.clock_leeway)
        self._cache = VerifiedTokenCache(cache_entries) if cache_entries > 0 else None

    @property
    def cache(self) -> VerifiedTokenCache | None:
        """The verified-token cache, or None when disabled."""
        return self._cache

    def use_keyring(self, keyring: KeyRing) -> None:
        """Verify with ``keyring`` from now on, and forget cached tokens (a key may
        have been withdrawn)."""
        self._keyring = keyring
        if self._cache is not None:
            self._cache.clear()

    def verify(self, token: str) -> AccessTokenClaims:
        """The claims of ``token`` if it is a valid access token from us.

        Raises:
            InvalidToken: for every failure, with ``reason`` naming it (for logs and
                ``keyturn token verify``; never shown to the caller).
        """
        try:
            if not isinstance(token, str):
                raise InvalidToken("not_a_string")
            if len(token) > MAX_TOKEN_LENGTH:
                raise InvalidToken("too_large")
            now = self._clock.now()
            cache = self._cache
            if cache is not None:
                cached = cache.get(token, now)
                if cached is not None:
                    return cached
            claims = self._verify(token, now)
            if cache is not None and now < claims.exp:
                cache.put(token, claims)
            return claims
        except InvalidToken:
            raise
        except Exception as exc:  # fail closed: a bug or library surprise is a 401, not a 500
            raise InvalidToken(f"unexpected:{type(exc).__name__}") from exc

    def _verify(self, token: str, now: float) -> AccessTokenClaims:
        if _COMPACT_JWS.fullmatch(token) is None:
            raise InvalidToken("malformed")
        header_segment = token[: token.index(".")]
        header = json_object(b64decode(header_segment))

        extra = header.keys() - _ALLOWED_HEADERS
        if extra:
            if extra & _KEY_HEADERS:
                raise InvalidToken("key_header")
            if "crit" in extra:
                raise InvalidToken("crit")
            if "b64" in extra:
                raise InvalidToken("b64")
            raise InvalidToken("unexpected_header")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in _ACCESS_TOKEN_TYPES:
            raise InvalidToken("typ")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise InvalidToken("kid")
        try:
            key = self._keyring.verification_key(kid, now=now)
        except KeyError:
            raise InvalidToken("unknown_kid") from None
        if header.get("alg") != key.alg:
            raise InvalidToken("alg")

        obj = _deserialize(token, key)
        return self._claims(json_object(obj.payload), now)

    def _claims(self, payload: dict[str, Any], now: float) -> AccessTokenClaims:
        """RFC 7519/9068 claim rules, every claim required with its exact JSON type
        (``sid`` too, except in a client's own token, whose ``sub`` is its
        ``client_id``: the ``client_credentials`` grant)."""
        iss = typed_claim(payload, "iss", str)
        sub = typed_claim(payload, "sub", str)
        aud = typed_claim(payload, "aud", (str, list))
        exp = typed_claim(payload, "exp", int)
        iat = typed_claim(payload, "iat", int)
        jti = typed_claim(payload, "jti", str)
        sid = typed_claim(payload, "sid", str, required=False)
        scope = typed_claim(payload, "scope", str, allow_empty=True)
        roles = typed_claim(payload, "roles", list, allow_empty=True)
        nbf = typed_claim(payload, "nbf", int, required=False)
        client_id = typed_claim(payload, "client_id", str, required=False)
        auth_time = typed_claim(payload, "auth_time", int, required=False)
        jkt = _confirmation(typed_claim(payload, "cnf", dict, required=False))
        if sid is None:  # only a client's own token has no sign-in (client_credentials)
            if client_id is None or sub != client_id:
                raise InvalidToken("missing_claim:sid")
            sid = ""
        amr = typed_claim(payload, "amr", list, required=False)
        acr = typed_claim(payload, "acr", str, required=False)

        if iss != self._issuer:
            raise InvalidToken("invalid_claim:iss")
        if aud != self._audience:
            if not (isinstance(aud, list) and self._audience in aud):
                raise InvalidToken("invalid_claim:aud")
            if not all(isinstance(item, str) for item in aud):
                raise InvalidToken("invalid_claim:aud")
        # RFC 7519 4.1.4: not accepted "on or after" exp; the leeway absorbs clock skew.
        if exp <= now - self._leeway:
            raise InvalidToken("expired")
        if nbf is not None and nbf > now + self._leeway:
            raise InvalidToken("invalid_claim:nbf")
        if iat > now + self._leeway:
            raise InvalidToken("invalid_claim:iat")
        if not all(isinstance(role, str) for role in roles):
            raise InvalidToken("invalid_claim:roles")
        if auth_time is not None and auth_time > now + self._leeway:
            raise InvalidToken("invalid_claim:auth_time")
        if amr is not None and not all(isinstance(method, str) for method in amr):
            raise InvalidToken("invalid_claim:amr")

        return AccessTokenClaims(
            iss=self._issuer,  # verified equal; one shared string across cached entries
            sub=sub,
            aud=self._audience if aud == self._audience else tuple(aud),
            exp=exp,
            iat=iat,
            jti=jti,
            sid=sid,
            scope=scope,
            roles=tuple(roles),
            nbf=nbf,
            client_id=client_id,
            auth_time=auth_time,
            jkt=jkt,
            amr=tuple(amr or ()),
            acr=acr,
        )


def _confirmation(cnf: dict[str, Any] | None) -> str | None:
    """The ``jkt`` of a ``cnf`` claim (RFC 7800, RFC 9449 section 6.1). A ``cnf``
    without a usable ``jkt`` (another confirmation method, a wrong type) is
    refused: keyturn cannot honour it, so it must not accept it as a bearer token."""
    if cnf is None:
        return None
    jkt = cnf.get("jkt")
    if not isinstance(jkt, str) or not 0 < len(jkt) <= 128:
        raise InvalidToken("invalid_claim:cnf")
    return jkt


def verify_signature(signing_input: str, signature_segment: str, key: VerificationKey) -> bool:
    """Whether ``header.payload.signature`` is a JWS that joserfc accepts with ``key``
    and only the key's algorithm.

    This is the exact joserfc step of :meth:`TokenVerifier.verify` (without our
    pre-checks and claim rules); the RFC test vectors go through it. Anything joserfc
    refuses (a bad signature, an undecodable header, a disallowed ``alg``) is False.
    """
    try:
        _deserialize(f"{signing_input}.{signature_segment}", key)
    except InvalidToken:
        return False
    return True


def _deserialize(token: str, key: VerificationKey) -> jws.CompactSignature:
    """joserfc's parse and signature check of a compact JWS, with ``key`` and a
    registry allowing only ``key.alg``.

    Raises:
        InvalidToken: ``signature`` for a bad signature, ``too_large``, ``malformed``
            or ``jose:<joserfc error code>`` for anything else joserfc refuses.
    """
    try:
        return jws.deserialize_compact(token, key.key, registry=_REGISTRIES[key.alg])
    except BadSignatureError:
        raise InvalidToken("signature") from None
    except ExceededSizeError:
        raise InvalidToken("too_large") from None
    except JoseError as exc:
        raise InvalidToken(f"jose:{exc.error}") from None
    except ValueError:  # joserfc's own decoding errors outside its tree
        raise InvalidToken("malformed") from None
