"""The signature check of a DPoP proof, built once per key and algorithm.

:func:`signature_check` turns joserfc's key and algorithm (as
:mod:`keyturn.dpop.header` imported and checked them) into one function
``(signing_input, signature) -> bool`` that calls ``cryptography`` directly with
the public key object and the algorithm's own parameters (its hash, its RSA
padding), prepared once. It answers exactly what joserfc's ``alg.verify`` would:
False for a signature of the wrong length or one that does not verify; for ECDSA
it turns the JOSE ``r || s`` into the DER form ``cryptography`` verifies, as
joserfc does. What it saves is joserfc's per-call work around the one
``cryptography`` call (``validate_compact``'s registry and key checks, already
passed for this header, and the per-call lookups), about 8 µs a proof.

A key or algorithm outside the three families (EC, RSA, Ed25519/Ed448), or a
key whose JWK forbids ``verify`` (``key_ops``), gets joserfc's own ``alg.verify``,
so it is refused (or accepted) at the same point and for the same reason as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from joserfc.jwa import JWSAlgModel
from joserfc.jwk import ECKey, Key

__all__ = ["SignatureCheck", "signature_check"]

#: ``check(signing_input, signature)``: whether ``signature`` (as decoded from the
#: JWS, not base64url) is a valid signature of ``signing_input``.
SignatureCheck = Callable[[bytes, bytes], bool]

_EDWARDS = (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)


def signature_check(algorithm: JWSAlgModel, key: Key) -> SignatureCheck:
    """The signature check of ``key`` (a public joserfc key that passed
    ``algorithm.check_key``) under ``algorithm``; see the module docstring."""
    try:
        public: Any = key.get_op_key("verify")
    except Exception:  # key_ops without "verify": joserfc refuses it at its own point
        return _joserfc_check(algorithm, key)
    hash_type = getattr(algorithm, "hash_alg", None)
    if algorithm.key_type == "EC" and isinstance(public, ec.EllipticCurvePublicKey):
        if isinstance(key, ECKey) and hash_type is not None:
            return _ecdsa_check(public, ec.ECDSA(hash_type()), (key.curve_key_size + 7) // 8)
    elif algorithm.key_type == "RSA" and isinstance(public, rsa.RSAPublicKey):
        rsa_padding = getattr(algorithm, "padding", None)
        if rsa_padding is not None and hash_type is not None:
            return _rsa_check(public, rsa_padding, hash_type())
    elif algorithm.key_type == "OKP" and isinstance(public, _EDWARDS):
        return _eddsa_check(public)
    return _joserfc_check(algorithm, key)


def _ecdsa_check(public: ec.EllipticCurvePublicKey, ecdsa: ec.ECDSA, size: int) -> SignatureCheck:
    def check(message: bytes, signature: bytes) -> bool:
        if len(signature) != 2 * size:
            return False
        r = int.from_bytes(signature[:size], "big")
        s = int.from_bytes(signature[size:], "big")
        try:
            public.verify(encode_dss_signature(r, s), message, ecdsa)
        except InvalidSignature:
            return False
        return True

    return check


def _rsa_check(public: rsa.RSAPublicKey, rsa_padding: Any, hash_value: Any) -> SignatureCheck:
    def check(message: bytes, signature: bytes) -> bool:
        try:
            public.verify(signature, message, rsa_padding, hash_value)
        except InvalidSignature:
            return False
        return True

    return check


def _eddsa_check(public: ed25519.Ed25519PublicKey | ed448.Ed448PublicKey) -> SignatureCheck:
    def check(message: bytes, signature: bytes) -> bool:
        try:
            public.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    return check


def _joserfc_check(algorithm: JWSAlgModel, key: Key) -> SignatureCheck:
    def check(message: bytes, signature: bytes) -> bool:
        return bool(algorithm.verify(message, signature, key))

    return check
