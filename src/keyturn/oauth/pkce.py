"""PKCE (RFC 7636), ``S256`` only.

Every authorization code is bound to a ``code_challenge``; only the client that
made the challenge knows the ``code_verifier`` behind it, so a stolen or
injected code is worthless (RFC 9700 section 2.1.1). ``plain`` is refused: it
sends the verifier itself through the browser, which is what PKCE hides. A
missing ``code_challenge_method`` means ``plain`` (RFC 7636 section 4.3), so it
is refused too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from keyturn.errors import InvalidGrant, InvalidRequest

__all__ = ["METHOD", "check_challenge", "s256_challenge", "verify_code_verifier"]

#: The only ``code_challenge_method`` keyturn accepts.
METHOD = "S256"
#: RFC 7636 section 4.1: 43 to 128 unreserved characters (RFC 3986 section 2.3).
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
#: base64url (no padding) of a SHA-256 digest: exactly 43 characters, and the
#: last one carries only 4 bits, so it is one of ``AEIMQUYcgkosw048``.
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]")


def check_challenge(code_challenge: str | None, method: str | None) -> str:
    """Return ``code_challenge`` if the authorization request may carry it.

    Raises:
        InvalidRequest: the challenge is missing or is not the base64url of a
            SHA-256 digest, or the method is missing, ``plain``, or anything
            other than ``S256``.
    """
    if not code_challenge:
        raise InvalidRequest("code_challenge is required (PKCE with S256)")
    if method != METHOD:
        if method in (None, "", "plain"):
            raise InvalidRequest("code_challenge_method=S256 is required; plain is refused")
        raise InvalidRequest("code_challenge_method must be S256")
    if _CHALLENGE.fullmatch(code_challenge) is None:
        raise InvalidRequest("code_challenge must be 43 base64url characters (S256)")
    return code_challenge


def s256_challenge(code_verifier: str) -> str:
    """``BASE64URL(SHA256(ASCII(code_verifier)))`` (RFC 7636 section 4.2).

    Raises:
        InvalidGrant: the verifier is not 43-128 unreserved characters.
    """
    if not isinstance(code_verifier, str) or _VERIFIER.fullmatch(code_verifier) is None:
        raise InvalidGrant("code_verifier must be 43 to 128 unreserved characters")
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify_code_verifier(code_verifier: str, code_challenge: str) -> None:
    """Check that ``code_verifier`` is the secret behind ``code_challenge``
    (RFC 7636 section 4.6), in constant time.

    Raises:
        InvalidGrant: the verifier is malformed or does not match.
    """
    computed = s256_challenge(code_verifier)
    if not hmac.compare_digest(computed.encode("ascii"), code_challenge.encode("ascii")):
        raise InvalidGrant("code_verifier does not match the code_challenge")
