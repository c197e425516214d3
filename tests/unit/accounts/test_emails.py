"""E-mail validation and normalisation (keyturn.emails)."""

from __future__ import annotations

import pytest

from keyturn.accounts.emails import normalize_email
from keyturn.errors import InvalidEmail
from keyturn.stores.records import normalize_email_key


def test_trims_and_lowercases_domain_but_keeps_local_part() -> None:
    """Surrounding whitespace goes, the domain is lower-cased, the local part kept."""
    assert normalize_email("  Alice.Smith@Example.COM \n") == "Alice.Smith@example.com"


def test_internationalised_address_accepted() -> None:
    """Unicode local parts and domains are valid addresses."""
    assert normalize_email("Ünïcode@Bücher.de") == "Ünïcode@bücher.de"


def test_plus_addressing_kept() -> None:
    """Sub-addresses are distinct addresses; nothing is stripped."""
    assert normalize_email("user+tag@example.com") == "user+tag@example.com"


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "not-an-address",
        "a@b",
        "a b@example.com",
        "a@@example.com",
        "alice@localhost",
        "al\x00ice@example.com",
        "alice@exa\tmple.com",
        "al\u202eice@example.com",
    ],
)
def test_invalid_addresses_rejected(raw: str) -> None:
    """Malformed addresses and control characters raise InvalidEmail."""
    with pytest.raises(InvalidEmail):
        normalize_email(raw)


def test_over_long_address_rejected() -> None:
    """Anything over 320 characters is refused before parsing."""
    with pytest.raises(InvalidEmail, match="320"):
        normalize_email("a" * 64 + "@" + "b" * 300 + ".com")


def test_case_variants_share_one_uniqueness_key() -> None:
    """A@X.io and a@x.io normalise to the same store key."""
    first = normalize_email_key(normalize_email("A@X.io"))
    second = normalize_email_key(normalize_email("a@x.io"))
    assert first == second
