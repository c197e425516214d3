"""One DPoP proof checked against one request: every rule of RFC 9449 section 4.3
but the two that need state (the server nonce and ``jti`` replay, which
:class:`~keyturn.dpop.verifier.DpopVerifier` adds on top).

Division of labour, as in :mod:`keyturn.tokens.access`: joserfc parses the JWS compact form
(``jws.extract_compact``, with size limits), imports the header's ``jwk``, checks
that key against the algorithm (type, curve) and verifies the signature with a
registry allowing only that one algorithm (``jws.validate_compact``); it also
computes the RFC 7638 thumbprint. keyturn applies the policy around it: the
protected header holds ``typ`` = ``dpop+jwt``, an allowed asymmetric ``alg`` and a
public ``jwk`` (no private member, RSA of at least 2048 bits), and nothing that
changes how the JWS is read (``crit``, ``b64``) or names another key (``jku``,
``x5c``, ...); then each claim is checked with its exact JSON type. Every failure is
:class:`~keyturn.errors.InvalidDpopProof` with a ``reason`` for logs.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import math
import re
import warnings
from dataclasses import dataclass
from typing import Any, Final

from joserfc import jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import JWKRegistry, Key, RSAKey

from keyturn.dpop.htu import normalize_uri
from keyturn.errors import InvalidDpopProof

__all__ = [
    "DEFAULT_ALGORITHMS",
    "MAX_JTI_LENGTH",
    "MAX_PROOF_LENGTH",
    "PROOF_TYPE",
    "SUPPORTED_ALGORITHMS",
    "VerifiedProof",
    "access_token_hash",
    "check_proof",
]

#: The ``typ`` of a DPoP proof (RFC 9449 section 4.2).
PROOF_TYPE: Final = "dpop+jwt"
#: The algorithms accepted unless configured otherwise (``dpop_signing_alg_values_supported``).
DEFAULT_ALGORITHMS: Final[tuple[str, ...]] = ("ES256", "ES384", "RS256", "PS256", "EdDSA")
#: Every algorithm that may be configured: asymmetric signatures only, never ``none``/HS*.
SUPPORTED_ALGORITHMS: Final[frozenset[str]] = frozenset(
    {*DEFAULT_ALGORITHMS, "ES512", "PS384", "PS512", "RS384", "RS512", "Ed25519"}
)
#: Longer ``DPoP`` header values are refused before parsing (an RSA-4096 proof is ~2.2 KB).
MAX_PROOF_LENGTH: Final = 4096
MAX_JTI_LENGTH: Final = 256
MIN_RSA_BITS: Final = 2048
#: base64url length of a 2048-bit modulus (256 bytes, no padding).
_MIN_RSA_N_CHARS: Final = 342

_TYPES: Final = frozenset({PROOF_TYPE, "application/" + PROOF_TYPE})
#: ``kid`` is tolerated (and ignored): the key is the one in ``jwk``.
_ALLOWED_HEADERS: Final = frozenset({"typ", "alg", "jwk", "kid"})
#: JWK members that only a private or symmetric key has (RFC 7517/7518).
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "r", "t", "k"})
_COMPACT: Final = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class _ProofRegistry(jws.JWSRegistry):
    """joserfc's registry with limits sized for proofs (the header holds a whole JWK)."""

    max_header_length = 2048
    max_payload_length = 2048
    max_signature_length = 1024


#: One registry per algorithm, each allowing only that algorithm, built once; the
#: first only parses (its size limits), it never picks an algorithm.
_PARSER: Final = _ProofRegistry()
_REGISTRIES: Final = {alg: _ProofRegistry(algorithms=[alg]) for alg in SUPPORTED_ALGORITHMS}

# joserfc warns on every use of the JOSE name "EdDSA" (RFC 9864 prefers "Ed25519");
# clients send "EdDSA", so exactly that warning is silenced (as in keyturn.tokens).
warnings.filterwarnings(
    "ignore", message=re.escape("EdDSA is deprecated via RFC 9864"), category=SecurityWarning
)


@dataclass(frozen=True, slots=True)
class VerifiedProof:
    """What a verified proof establishes.

    ``jkt`` is the RFC 7638 SHA-256 thumbprint of the proof's key: the value to put
    in (or compare with) a token's ``cnf.jkt``. ``htu`` is normalised. ``nonce`` is
    the proof's ``nonce`` claim, if any. ``fresh_nonce``, set by the verifier when the
    proof's nonce is from the previous window, is the nonce to send in ``DPoP-Nonce``
    with the (successful) answer.
    """

    jkt: str
    jti: str
    iat: float
    htm: str
    htu: str
    nonce: str | None = None
    fresh_nonce: str | None = None


def access_token_hash(access_token: str) -> str:
    """The ``ath`` for ``access_token``: base64url(SHA-256(ASCII(token))), unpadded.

    Raises:
        UnicodeEncodeError: the token is not ASCII (no token of ours is).
    """
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_proof(
    proof: str,
    *,
    method: str,
    url: str,
    now: float,
    max_age: float,
    clock_skew: float,
    algorithms: frozenset[str] = frozenset(DEFAULT_ALGORITHMS),
    access_token: str | None = None,
    expected_jkt: str | None = None,
    max_length: int = MAX_PROOF_LENGTH,
) -> VerifiedProof:
    """Check one proof (a single ``DPoP`` header value) against the request.

    ``url`` is the request's absolute URL as received (its query is ignored);
    ``access_token`` makes ``ath`` required and checked; ``expected_jkt`` (a token's
    ``cnf.jkt``) must equal the proof key's thumbprint. ``iat`` may be at most
    ``max_age`` seconds old and ``clock_skew`` seconds ahead of ``now``. The nonce
    and ``jti`` replay are not checked here.

    Raises:
        InvalidDpopProof: for every failure, ``reason`` naming it.
    """
    try:
        return _check(
            proof, method, url, now, max_age, clock_skew, algorithms, access_token,
            expected_jkt, max_length,
        )  # fmt: skip
    except InvalidDpopProof:
        raise
    except Exception as exc:  # fail closed: a library surprise is a refusal, not a 500
        raise InvalidDpopProof(f"unexpected:{type(exc).__name__}") from exc


def _check(
    proof: str,
    method: str,
    url: str,
    now: float,
    max_age: float,
    clock_skew: float,
    algorithms: frozenset[str],
    access_token: str | None,
    expected_jkt: str | None,
    max_length: int,
) -> VerifiedProof:
    if not isinstance(proof, str) or not proof:
        raise InvalidDpopProof("missing")
    if len(proof) > max_length:
        raise InvalidDpopProof("too_large")
    if _COMPACT.fullmatch(proof) is None:
        raise InvalidDpopProof("malformed")
    try:
        obj = jws.extract_compact(proof.encode("ascii"), registry=_PARSER)
    except Exception:  # joserfc's DecodeError, ExceededSizeError, binascii/JSON errors
        raise InvalidDpopProof("malformed") from None
    header = obj.headers()

    # --- the protected header -----------------------------------------------------
    if header.keys() - _ALLOWED_HEADERS:
        raise InvalidDpopProof("unexpected_header")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in _TYPES:
        raise InvalidDpopProof("typ")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms or alg not in _REGISTRIES:
        raise InvalidDpopProof("alg")
    key, jkt = _public_key(header.get("jwk"))

    # --- the signature, by joserfc with the header's key and only its alg ----------
    try:
        valid = jws.validate_compact(obj, key, registry=_REGISTRIES[alg])
    except Exception:  # key unfit for alg (kty, curve, use), header value errors
        raise InvalidDpopProof("key_alg_mismatch") from None
    if not valid:
        raise InvalidDpopProof("signature")
    try:
        claims = json.loads(obj.payload)
    except ValueError:
        raise InvalidDpopProof("malformed_claims") from None
    if not isinstance(claims, dict):
        raise InvalidDpopProof("malformed_claims")

    # --- the claims ------------------------------------------------------------------
    jti = _string(claims, "jti")
    if len(jti) > MAX_JTI_LENGTH or "\0" in jti:
        raise InvalidDpopProof("invalid_claim:jti")
    htm = _string(claims, "htm")
    if htm != method:
        raise InvalidDpopProof("htm")
    try:
        htu = _normalize(_string(claims, "htu"), allow_query=False)
    except ValueError:
        raise InvalidDpopProof("invalid_claim:htu") from None
    try:
        target = _normalize(url, allow_query=True)
    except ValueError:
        raise InvalidDpopProof("request_url") from None
    if htu != target:
        raise InvalidDpopProof("htu")
    iat = claims.get("iat")
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise InvalidDpopProof("missing_claim:iat" if iat is None else "invalid_claim:iat")
    if isinstance(iat, float) and not math.isfinite(iat):  # 1e999 parses as inf
        raise InvalidDpopProof("invalid_claim:iat")
    if iat > now + clock_skew:
        raise InvalidDpopProof("iat_in_future")
    if iat < now - max_age:
        raise InvalidDpopProof("iat_too_old")
    if access_token is not None:
        ath = _string(claims, "ath")
        if not hmac.compare_digest(ath.encode(), access_token_hash(access_token).encode()):
            raise InvalidDpopProof("ath")
    nonce = claims.get("nonce")
    if nonce is not None and not isinstance(nonce, str):
        raise InvalidDpopProof("invalid_claim:nonce")

    if expected_jkt is not None and not hmac.compare_digest(jkt.encode(), expected_jkt.encode()):
        raise InvalidDpopProof("jkt_mismatch")
    return VerifiedProof(jkt=jkt, jti=jti, iat=float(iat), htm=htm, htu=htu, nonce=nonce)


def _public_key(jwk: Any) -> tuple[Key, str]:
    """joserfc's key for the header's ``jwk`` (present, public, RSA >= 2048 bits) and
    its RFC 7638 thumbprint."""
    if jwk is None:
        raise InvalidDpopProof("missing_jwk")
    if not isinstance(jwk, dict):
        raise InvalidDpopProof("invalid_jwk")
    if jwk.keys() & _PRIVATE_MEMBERS:
        raise InvalidDpopProof("private_jwk")
    modulus = jwk.get("n")
    if jwk.get("kty") == "RSA" and isinstance(modulus, str) and len(modulus) < _MIN_RSA_N_CHARS:
        raise InvalidDpopProof("weak_jwk")  # before joserfc warns about it on import
    try:
        return _import_key(json.dumps(jwk, sort_keys=True, separators=(",", ":")))
    except InvalidDpopProof:
        raise
    except Exception:  # unknown kty, missing or malformed members, bad points
        raise InvalidDpopProof("invalid_jwk") from None


@functools.lru_cache(maxsize=4096)
def _import_key(canonical_jwk: str) -> tuple[Key, str]:
    """Import a public JWK (given as canonical JSON, every member in the cache key)
    and compute its thumbprint. Cached: a client signs many proofs with one key, and
    the import (point or modulus checks) and thumbprint cost as much as the
    signature check. Failures raise and so are never cached."""
    key = JWKRegistry.import_key(json.loads(canonical_jwk))
    if key.is_private:
        raise InvalidDpopProof("private_jwk")
    if isinstance(key, RSAKey) and key.raw_value.key_size < MIN_RSA_BITS:
        raise InvalidDpopProof("weak_jwk")
    return key, key.thumbprint()


#: The normal form of ``htu`` claims and request URLs: a pure function of few distinct
#: inputs per deployment, so a bounded cache skips most of the work.
_normalize: Final = functools.lru_cache(maxsize=2048)(normalize_uri)


def _string(claims: dict[str, Any], name: str) -> str:
    """A required, non-empty string claim."""
    value = claims.get(name)
    if value is None:
        raise InvalidDpopProof(f"missing_claim:{name}")
    if not isinstance(value, str) or not value:
        raise InvalidDpopProof(f"invalid_claim:{name}")
    return value
