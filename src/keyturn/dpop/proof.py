"""One DPoP proof checked against one request: every rule of RFC 9449 section 4.3
but the two that need state (the server nonce and ``jti`` replay, which
:class:`~keyturn.dpop.verifier.DpopVerifier` adds on top).

Division of labour, as in :mod:`keyturn.tokens.access`: joserfc parses the JWS compact form
(``jws.extract_compact``, with size limits) and decodes base64url; the protected
header and its ``jwk`` are checked by :mod:`keyturn.dpop.header` (joserfc imports
the key and computes the RFC 7638 thumbprint), the signature by
:mod:`keyturn.dpop.signature` (``cryptography``); then each claim is checked here
with its exact JSON type. Every failure is :class:`~keyturn.errors.InvalidDpopProof`
with a ``reason`` for logs.

The hot path (issue #16, item 4): a client sends the same header with every proof,
so the header's outcome is cached by its base64url segment
(:class:`~keyturn.dpop.header.HeaderCache`). For a header seen before, a proof
costs its signature check plus about 15 µs: joserfc's size limits and base64url
decoding of the payload and signature, one ``json.loads``, the claim checks. A
new header takes joserfc's full parse first, so every proof meets the same rules
in the same order, and the same ``reason`` for each failure, either way.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Final

from joserfc import jws
from joserfc.util import urlsafe_b64decode

from keyturn.dpop.header import (
    DEFAULT_ALGORITHMS,
    PROOF_TYPE,
    SUPPORTED_ALGORITHMS,
    HeaderCache,
    ProofKey,
    ProofRegistry,
    check_header,
)
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

#: Longer ``DPoP`` header values are refused before parsing (an RSA-4096 proof is ~2.2 KB).
MAX_PROOF_LENGTH: Final = 4096
MAX_JTI_LENGTH: Final = 256

_COMPACT: Final = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
#: Only parses (its size limits); it never picks an algorithm.
_PARSER: Final = ProofRegistry()
#: The outcome of every header that passed, by its base64url segment (process-wide:
#: a header's outcome does not depend on the verifier, whose allow-list is
#: applied on each use).
_HEADERS: Final = HeaderCache()


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
    return _ath(access_token).decode("ascii")


def _ath(access_token: str) -> bytes:
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=")


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
    raw = proof.encode("ascii")  # the pattern allows nothing else
    key, payload, signing_input, signature_segment = _parse(raw, algorithms)

    # --- the signature, with the header's key and only its alg ----------------------
    try:
        signature = urlsafe_b64decode(signature_segment)
    except ValueError:  # as joserfc: an undecodable signature does not verify
        raise InvalidDpopProof("signature") from None
    try:
        valid = key.verify(signing_input, signature)
    except Exception:  # key unfit for alg at verification time (as joserfc raises it)
        raise InvalidDpopProof("key_alg_mismatch") from None
    if not valid:
        raise InvalidDpopProof("signature")
    try:
        claims = json.loads(payload)
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
        htu = _normalize_claim(_string(claims, "htu"))
    except ValueError:
        raise InvalidDpopProof("invalid_claim:htu") from None
    try:
        target = _normalize_request(url)
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
        if not hmac.compare_digest(ath.encode(), _ath(access_token)):
            raise InvalidDpopProof("ath")
    nonce = claims.get("nonce")
    if nonce is not None and not isinstance(nonce, str):
        raise InvalidDpopProof("invalid_claim:nonce")

    jkt = key.jkt
    if expected_jkt is not None and not hmac.compare_digest(jkt.encode(), expected_jkt.encode()):
        raise InvalidDpopProof("jkt_mismatch")
    return VerifiedProof(jkt=jkt, jti=jti, iat=float(iat), htm=htm, htu=htu, nonce=nonce)


def _parse(raw: bytes, algorithms: frozenset[str]) -> tuple[ProofKey, bytes, bytes, bytes]:
    """The header's key, the decoded payload, the signing input and the signature
    segment of a proof of three base64url segments (the caller's pattern made sure
    of that).

    A header segment seen before skips its decoding and checks (the cached
    outcome), but the proof still meets joserfc's size limits and the payload
    joserfc's base64url decoding, as ``jws.extract_compact`` applies them; a new
    one goes through ``extract_compact`` and every header rule.

    Raises:
        InvalidDpopProof: ``malformed`` (sizes, base64url, the header's JSON),
            then any header rule's reason (:func:`keyturn.dpop.header.check_header`).
    """
    header_segment, payload_segment, signature_segment = raw.split(b".")
    signing_input = raw[: len(header_segment) + 1 + len(payload_segment)]
    key = _HEADERS.get(header_segment)
    if key is None:
        try:
            obj = jws.extract_compact(raw, registry=_PARSER)
        except Exception:  # joserfc's DecodeError, ExceededSizeError, binascii/JSON errors
            raise InvalidDpopProof("malformed") from None
        key = check_header(obj.headers(), algorithms)
        _HEADERS.put(header_segment, key)
        return key, obj.payload, signing_input, signature_segment
    try:  # what extract_compact checks of a proof whose header is known to be sound
        _PARSER.validate_compact_value_size(raw)
        _PARSER.validate_signature_size(signature_segment)
        _PARSER.validate_payload_size(payload_segment)
        payload = urlsafe_b64decode(payload_segment)
    except Exception:
        raise InvalidDpopProof("malformed") from None
    if key.alg not in algorithms:  # the one header rule that depends on the caller
        raise InvalidDpopProof("alg")
    return key, payload, signing_input, signature_segment


#: The normal form of ``htu`` claims and of request URLs: pure functions of few
#: distinct inputs per deployment, so bounded caches skip most of the work.
_normalize_claim: Final = functools.lru_cache(maxsize=2048)(
    functools.partial(normalize_uri, allow_query=False)
)
_normalize_request: Final = functools.lru_cache(maxsize=2048)(
    functools.partial(normalize_uri, allow_query=True)
)


def _string(claims: dict[str, Any], name: str) -> str:
    """A required, non-empty string claim."""
    value = claims.get(name)
    if value is None:
        raise InvalidDpopProof(f"missing_claim:{name}")
    if not isinstance(value, str) or not value:
        raise InvalidDpopProof(f"invalid_claim:{name}")
    return value
