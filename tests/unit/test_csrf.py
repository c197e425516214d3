"""keyturn.csrf: the CSRF tokens and the same-origin rule, without a framework."""

from __future__ import annotations

import pytest

from keyturn.csrf import (
    allowed_origins,
    check_origin,
    check_pre_session_csrf,
    check_refresh_csrf,
    check_session_csrf,
    new_pre_session_token,
    normalize_origin,
    refresh_csrf_token,
    session_csrf_token,
)
from keyturn.errors import CsrfFailed
from keyturn.settings import Settings

OWN = "https://id.example"


def own() -> str:
    return OWN


def test_a_session_token_is_bound_to_its_secret() -> None:
    """The token of one secret passes for it and for no other secret."""
    token = session_csrf_token("a" * 43)
    check_session_csrf("a" * 43, token)
    with pytest.raises(CsrfFailed):
        check_session_csrf("b" * 43, token)


def test_the_refresh_proof_is_bound_to_its_token() -> None:
    """A refresh cookie's proof passes for that token only, and never when missing."""
    proof = refresh_csrf_token("ktr_" + "x" * 43)
    check_refresh_csrf("ktr_" + "x" * 43, proof)
    for token, submitted in (("ktr_" + "y" * 43, proof), ("ktr_" + "x" * 43, None)):
        with pytest.raises(CsrfFailed):
            check_refresh_csrf(token, submitted)


def test_the_pre_session_token_must_match_its_cookie() -> None:
    """The login form's token must equal the cookie's; either missing is refused."""
    token = new_pre_session_token()
    assert len(token) == 43 and token != new_pre_session_token()
    check_pre_session_csrf(token, token)
    for cookie, submitted in ((token, new_pre_session_token()), (None, token), (token, "")):
        with pytest.raises(CsrfFailed):
            check_pre_session_csrf(cookie, submitted)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("HTTPS://ID.Example:443/", "https://id.example"),
        ("http://localhost:8000", "http://localhost:8000"),
        ("http://[::1]:80", "http://[::1]"),
        ("null", None),
        ("ftp://id.example", None),
        ("https://id.example:99999", None),
    ],
)
def test_origins_are_normalized(value: str, expected: str | None) -> None:
    """Scheme and host lower-cased, default ports dropped; non-origins are None."""
    assert normalize_origin(value) == expected


def test_the_issuer_and_cors_origins_are_allowed() -> None:
    """Besides the request's own origin, the issuer's and the CORS origins may send."""
    settings = Settings(issuer="https://Public.example/", cors_origins=["https://spa.example"])
    assert allowed_origins(settings) == {"https://public.example", "https://spa.example"}


def test_same_origin_and_allowed_origins_pass() -> None:
    """The request's own origin, an allowed one, or no browser headers at all pass."""
    check_origin([OWN], ["same-origin"], own, frozenset())
    check_origin(["https://spa.example"], [], own, frozenset({"https://spa.example"}))
    check_origin([], [], own, frozenset())


@pytest.mark.parametrize(
    ("origins", "fetch_sites"),
    [
        ([], ["cross-site"]),
        (["https://evil.example"], []),
        (["null"], []),
        ([OWN, OWN], []),
    ],
)
def test_cross_site_requests_are_refused(origins: list[str], fetch_sites: list[str]) -> None:
    """Sec-Fetch-Site cross-site, a foreign or null Origin, or two Origins: refused."""
    with pytest.raises(CsrfFailed):
        check_origin(origins, fetch_sites, own, frozenset())


def test_the_own_origin_is_only_computed_when_needed() -> None:
    """An allowed Origin never asks for the request's own origin (it costs a header scan)."""

    def fail() -> str:
        raise AssertionError("own origin computed")

    check_origin(["https://spa.example"], [], fail, frozenset({"https://spa.example"}))
