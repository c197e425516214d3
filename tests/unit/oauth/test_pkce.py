"""PKCE S256 only (RFC 7636 sections 4.1-4.6, Appendix B)."""

from __future__ import annotations

import pytest
from tests.unit.oauth.support import CHALLENGE, VERIFIER

from keyturn.errors import InvalidGrant, InvalidRequest
from keyturn.oauth.pkce import check_challenge, s256_challenge, verify_code_verifier


def test_appendix_b_vector() -> None:
    """The S256 challenge of the RFC 7636 Appendix B verifier is the RFC's value."""
    assert s256_challenge(VERIFIER) == CHALLENGE
    verify_code_verifier(VERIFIER, CHALLENGE)  # raises on mismatch


def test_wrong_verifier_is_invalid_grant() -> None:
    """A different (well-formed) verifier does not match the challenge."""
    with pytest.raises(InvalidGrant):
        verify_code_verifier("a" * 43, CHALLENGE)


@pytest.mark.parametrize(
    "verifier",
    ["a" * 42, "a" * 129, "a" * 42 + "+", "a" * 42 + "=", "a" * 42 + " ", "", "a" * 42 + "\u00e9"],
)
def test_verifier_syntax_is_43_to_128_unreserved_characters(verifier: str) -> None:
    """Too short, too long, or outside [A-Za-z0-9-._~] is refused (section 4.1)."""
    with pytest.raises(InvalidGrant):
        s256_challenge(verifier)


def test_verifier_of_128_unreserved_characters_is_accepted() -> None:
    """The longest legal verifier, with every unreserved punctuation mark, hashes."""
    verifier = ("-._~" + "Az09") * 16
    assert len(verifier) == 128
    verify_code_verifier(verifier, s256_challenge(verifier))


def test_challenge_with_s256_is_accepted() -> None:
    """A 43-character base64url challenge with method S256 passes."""
    assert check_challenge(CHALLENGE, "S256") == CHALLENGE


@pytest.mark.parametrize("method", ["plain", None, "", "s256", "S512"])
def test_plain_missing_or_unknown_method_is_invalid_request(method: str | None) -> None:
    """plain (and an absent method, which means plain) is refused (SPEC)."""
    with pytest.raises(InvalidRequest) as caught:
        check_challenge(CHALLENGE, method)
    assert caught.value.code == "invalid_request"


@pytest.mark.parametrize(
    "challenge", [None, "", CHALLENGE[:-1], CHALLENGE + "A", CHALLENGE[:-1] + "N"]
)
def test_missing_or_malformed_challenge_is_invalid_request(challenge: str | None) -> None:
    """A missing challenge, or one that cannot be a SHA-256 digest, is refused."""
    with pytest.raises(InvalidRequest):
        check_challenge(challenge, "S256")
