"""A DPoP proof's protected header and the key it names, checked once per distinct header.

The header rules of RFC 9449 section 4.3: ``typ`` is ``dpop+jwt``; ``alg`` is an
allowed asymmetric algorithm; ``jwk`` is a public key (no private member, RSA of
at least 2048 bits) that fits ``alg``; nothing changes how the JWS is read
(``crit``, ``b64``) or names another key (``jku``, ``x5c``, ...). joserfc decodes
the header, imports the key, applies its registry's header checks and its
algorithm's key checks (type, curve, ``use``, ``alg``) and computes the RFC 7638
thumbprint; keyturn applies the policy around it.

All of that depends on the header alone, and a client sends the same header,
byte for byte, with every proof it signs. So the outcome of a header that passes
is kept in :class:`HeaderCache`, keyed by the header's base64url segment exactly
as received: a :class:`ProofKey` (the algorithm, the thumbprint, the signature
check of :mod:`keyturn.dpop.signature`). Another segment, even one decoding to
the same JSON, is another key of the cache and is checked in full. A header that
fails is never kept, so it is checked (and refused) again each time. The one
check that depends on the caller, the verifier's algorithm allow-list, is applied
on every use, at the point of the rules where it stands.
"""

from __future__ import annotations

import functools
import json
import re
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final

from joserfc import jws
from joserfc.errors import SecurityWarning
from joserfc.jwk import JWKRegistry, Key, RSAKey

from keyturn.dpop.signature import SignatureCheck, signature_check
from keyturn.errors import InvalidDpopProof

__all__ = [
    "DEFAULT_ALGORITHMS",
    "HEADER_CACHE_ENTRIES",
    "PROOF_TYPE",
    "SUPPORTED_ALGORITHMS",
    "HeaderCache",
    "ProofKey",
    "ProofRegistry",
    "check_header",
]

#: The ``typ`` of a DPoP proof (RFC 9449 section 4.2).
PROOF_TYPE: Final = "dpop+jwt"
#: The algorithms accepted unless configured otherwise (``dpop_signing_alg_values_supported``).
DEFAULT_ALGORITHMS: Final[tuple[str, ...]] = ("ES256", "ES384", "RS256", "PS256", "EdDSA")
#: Every algorithm that may be configured: asymmetric signatures only, never ``none``/HS*.
SUPPORTED_ALGORITHMS: Final[frozenset[str]] = frozenset(
    {*DEFAULT_ALGORITHMS, "ES512", "PS384", "PS512", "RS384", "RS512", "Ed25519"}
)
MIN_RSA_BITS: Final = 2048
#: Distinct headers remembered (one per client key, typically): about 2 KB each.
HEADER_CACHE_ENTRIES: Final = 4096
#: base64url length of a 2048-bit modulus (256 bytes, no padding).
_MIN_RSA_N_CHARS: Final = 342

_TYPES: Final = frozenset({PROOF_TYPE, "application/" + PROOF_TYPE})
#: ``kid`` is tolerated (and ignored): the key is the one in ``jwk``.
_ALLOWED_HEADERS: Final = frozenset({"typ", "alg", "jwk", "kid"})
#: JWK members that only a private or symmetric key has (RFC 7517/7518).
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "r", "t", "k"})


class ProofRegistry(jws.JWSRegistry):
    """joserfc's registry with limits sized for proofs (the header holds a whole JWK)."""

    max_header_length = 2048
    max_payload_length = 2048
    max_signature_length = 1024


#: One registry per algorithm, each allowing only that algorithm, built once.
_REGISTRIES: Final = {alg: ProofRegistry(algorithms=[alg]) for alg in SUPPORTED_ALGORITHMS}

# joserfc warns on every use of the JOSE name "EdDSA" (RFC 9864 prefers "Ed25519");
# clients send "EdDSA", so exactly that warning is silenced (as in keyturn.tokens).
warnings.filterwarnings(
    "ignore", message=re.escape("EdDSA is deprecated via RFC 9864"), category=SecurityWarning
)


@dataclass(frozen=True, slots=True)
class ProofKey:
    """What a header that passed every rule establishes: its ``alg``, the RFC 7638
    thumbprint ``jkt`` of its ``jwk``, and ``verify``, the check of a signature by
    that key with that algorithm (:func:`keyturn.dpop.signature.signature_check`)."""

    alg: str
    jkt: str
    verify: SignatureCheck


def check_header(header: dict[str, Any], algorithms: frozenset[str]) -> ProofKey:
    """Apply every header rule, in this order, to a decoded protected header.

    Raises:
        InvalidDpopProof: ``unexpected_header``, ``typ``, ``alg`` (not allowed by
            ``algorithms``), ``missing_jwk``, ``invalid_jwk``, ``private_jwk``,
            ``weak_jwk``, or ``key_alg_mismatch`` (joserfc's header or key checks).
    """
    if header.keys() - _ALLOWED_HEADERS:
        raise InvalidDpopProof("unexpected_header")
    typ = header.get("typ")
    if not isinstance(typ, str) or typ.lower() not in _TYPES:
        raise InvalidDpopProof("typ")
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms or alg not in _REGISTRIES:
        raise InvalidDpopProof("alg")
    key, jkt = _public_key(header.get("jwk"))
    registry = _REGISTRIES[alg]
    try:
        registry.check_header(header)
        algorithm = registry.get_alg(alg)
        algorithm.check_key(key)
    except Exception:  # key unfit for alg (kty, curve, use), header value errors
        raise InvalidDpopProof("key_alg_mismatch") from None
    return ProofKey(alg=alg, jkt=jkt, verify=signature_check(algorithm, key))


class HeaderCache:
    """The :class:`ProofKey` of recently seen header segments, least recently used
    dropped first; see the module docstring for why this is sound.

    Args:
        max_entries: the most headers held.

    Raises:
        ValueError: ``max_entries`` is below 1.
    """

    __slots__ = ("_entries", "_max_entries")

    def __init__(self, max_entries: int = HEADER_CACHE_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._entries: OrderedDict[bytes, ProofKey] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, segment: bytes) -> ProofKey | None:
        """The key of a header segment that passed before, or None."""
        found = self._entries.get(segment)
        if found is not None:
            # (not contextlib.suppress: a context manager costs more than the lookup)
            try:  # noqa: SIM105
                self._entries.move_to_end(segment)
            except KeyError:  # dropped meanwhile by another thread: still a valid answer
                pass
        return found

    def put(self, segment: bytes, key: ProofKey) -> None:
        """Remember that ``segment`` passed every header rule with ``key``."""
        entries = self._entries
        entries[segment] = key
        while len(entries) > self._max_entries:
            try:
                entries.popitem(last=False)
            except KeyError:  # emptied meanwhile by another thread
                break


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


@functools.lru_cache(maxsize=HEADER_CACHE_ENTRIES)
def _import_key(canonical_jwk: str) -> tuple[Key, str]:
    """Import a public JWK (given as canonical JSON, every member in the cache key)
    and compute its thumbprint. Cached too: headers that differ only in ``kid``,
    ``typ`` spelling or member order name the same key. Failures raise and so are
    never cached."""
    key = JWKRegistry.import_key(json.loads(canonical_jwk))
    if key.is_private:
        raise InvalidDpopProof("private_jwk")
    if isinstance(key, RSAKey) and key.raw_value.key_size < MIN_RSA_BITS:
        raise InvalidDpopProof("weak_jwk")
    return key, key.thumbprint()
