"""E-mail addresses: validation and the one normal form keyturn stores.

Syntax only: no DNS lookups (``check_deliverability=False``), so registration and
sign-in never wait on the network. The normal form keeps the local part as typed
(NFC-normalised) and lower-cases the domain; uniqueness is decided separately and
case-insensitively by :func:`keyturn.stores.records.normalize_email_key`.

:func:`email_lookup_key` is the one identity of "the account this text names",
shared by the account lookup and the sign-in throttle: if they disagreed, every
spelling that email-validator maps to one address (full-width letters, ``。``
as the dot, punycode) would get its own count of guesses (#10 item 1).
"""

from __future__ import annotations

import unicodedata

from email_validator import EmailNotValidError, validate_email

from keyturn.errors import InvalidEmail
from keyturn.stores.records import normalize_email_key

__all__ = ["MAX_EMAIL_LENGTH", "email_lookup_key", "normalize_email"]

#: RFC 3696 errata: 64 octets of local part, "@", 255 of domain.
MAX_EMAIL_LENGTH = 320


def normalize_email(raw: str) -> str:
    """Trim, validate and normalise an e-mail address.

    Raises:
        InvalidEmail: the address is longer than 320 characters, holds control
            characters, or is not a syntactically valid address; ``detail`` says why.
    """
    candidate = raw.strip()
    if not candidate:
        raise InvalidEmail("An e-mail address is required.")
    if len(candidate) > MAX_EMAIL_LENGTH:
        raise InvalidEmail(f"The e-mail address must be at most {MAX_EMAIL_LENGTH} characters.")
    if any(unicodedata.category(char) in ("Cc", "Cf", "Cs") for char in candidate):
        raise InvalidEmail("The e-mail address contains control characters.")
    try:
        validated = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(f"The e-mail address is not valid: {exc}") from None
    return validated.normalized


def email_lookup_key(raw: str) -> str:
    """The key an account is found by for this typed address: the stored form's
    :func:`~keyturn.stores.records.normalize_email_key` of :func:`normalize_email`.

    Every spelling of one address (``Alice@EXAMPLE.com``, full-width letters,
    ``。`` as the dot, the punycode domain) yields the same key, the ``email_key``
    of the account it finds. Text that does not validate names no account; it
    falls back to its case-folded form, so it is still counted by the throttle.
    """
    try:
        return normalize_email_key(normalize_email(raw))
    except InvalidEmail:
        return normalize_email_key(raw)
