"""Redirect URI registration rules and exact matching (RFC 9700 section 4.1,
RFC 8252 sections 7.3 and 8.3)."""

from __future__ import annotations

import pytest

from keyturn.errors import InvalidRedirectUri
from keyturn.oauth.redirects import (
    is_loopback_redirect,
    match_redirect_uri,
    validate_redirect_uri,
    validate_redirect_uris,
)

REGISTERED = (
    "https://app/cb",
    "http://127.0.0.1/callback",
    "http://[::1]/callback",
    "http://127.0.0.1:8080/cli?x=1",
)


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/cb",
        "https://app.example.com/cb?tenant=7",
        "https://app.example.com:8443/cb",
        "http://127.0.0.1/callback",
        "http://127.0.0.1:51004/oauth2redirect",
        "http://[::1]:61023/callback",
    ],
)
def test_registration_accepts_https_and_loopback_literals(uri: str) -> None:
    """https URIs and http on 127.0.0.1 / [::1] register unchanged."""
    assert validate_redirect_uri(uri) == uri


@pytest.mark.parametrize(
    ("uri", "reason"),
    [
        ("https://app.example.com/cb#frag", "fragment"),
        ("https://app.example.com/cb#", "fragment"),
        ("https://*.example.com/cb", "wildcard"),
        ("https://app.example.com/*", "wildcard"),
        ("http://app.example.com/cb", "must use https"),
        ("http://192.168.1.2/cb", "must use https"),
        ("http://127.0.0.2/cb", "must use https"),
        ("ftp://app.example.com/cb", "must use https"),
        ("com.example.app:/cb", "not absolute"),
        ("/cb", "not absolute"),
        ("https:///cb", "not absolute"),
        ("https://user:pw@app.example.com/cb", "userinfo"),
        ("https://app.example.com/c b", "without spaces"),
        ("https://app.example.com/caf\u00e9", "ASCII"),
        ("HTTPS://app.example.com/cb", "lower case"),
        ("https://APP.example.com/cb", "lower case"),
        ("https://app.example.com:99999/cb", "invalid host or port"),
        ("https://app.example.com:/cb", "invalid port"),
        ("https://app.example.com:0/cb", "invalid port"),
        ("https://[::1/cb", "invalid host or port"),
        ("https://[zz]/cb", "invalid host or port"),
        ("https://app.example.com/cb?state=x", "state"),
        ("https://app.example.com/cb?code=1", "code"),
        ("https://app.example.com\\@evil.example/cb", "backslash"),
    ],
)
def test_registration_refuses_unsafe_uris_with_one_line_reason(uri: str, reason: str) -> None:
    """Fragments, wildcards, non-loopback http, userinfo and friends are refused,
    each with a one-line message that says why."""
    with pytest.raises(InvalidRedirectUri) as caught:
        validate_redirect_uri(uri)
    assert reason in caught.value.detail
    assert "\n" not in caught.value.detail
    assert caught.value.code == "invalid_redirect_uri"


@pytest.mark.parametrize("uri", ["http://localhost/cb", "http://localhost:8080/cb"])
def test_registration_refuses_localhost_and_points_to_the_ip_literal(uri: str) -> None:
    """localhost is refused (RFC 8252 section 8.3) with the literal to use instead."""
    with pytest.raises(InvalidRedirectUri, match=r"127\.0\.0\.1"):
        validate_redirect_uri(uri)


def test_registration_of_a_list_removes_duplicates_and_stops_at_the_first_bad_one() -> None:
    """A list registers in order without duplicates; one bad URI refuses it all."""
    assert validate_redirect_uris(["https://a/cb", "https://a/cb", "https://b/cb"]) == (
        "https://a/cb",
        "https://b/cb",
    )
    with pytest.raises(InvalidRedirectUri):
        validate_redirect_uris(["https://a/cb", "http://b/cb"])


def test_exact_registered_uri_matches() -> None:
    """The registered string itself matches."""
    assert match_redirect_uri("https://app/cb", REGISTERED) == "https://app/cb"


@pytest.mark.parametrize(
    "requested",
    [
        "https://app/cb/",
        "https://APP/cb",
        "https://app/cb?x=1",
        "https://app/CB",
        "https://app:443/cb",
        "https://app/cb#x",
        "https://app/cb/../cb",
        "https://app/cb%2F",
        "https://app/c",
        "",
    ],
)
def test_near_misses_of_an_https_uri_do_not_match(requested: str) -> None:
    """No normalization: a trailing slash, case, query, default port or dot
    segment makes a different URI."""
    assert match_redirect_uri(requested, REGISTERED) is None


@pytest.mark.parametrize(
    "requested",
    [
        "http://127.0.0.1:51004/callback",
        "http://127.0.0.1:1/callback",
        "http://127.0.0.1:65535/callback",
        "http://127.0.0.1/callback",
        "http://[::1]:61023/callback",
        "http://[::1]/callback",
        "http://127.0.0.1:9999/cli?x=1",
    ],
)
def test_loopback_uri_matches_on_any_port(requested: str) -> None:
    """A registered loopback URI matches the same URI on any port (RFC 8252 7.3)."""
    assert match_redirect_uri(requested, REGISTERED) == requested


@pytest.mark.parametrize(
    "requested",
    [
        "http://127.0.0.1:5000/other",
        "http://127.0.0.1:5000/callback/",
        "http://127.0.0.1:5000/callback?x=1",
        "http://127.0.0.1:5000/cli",
        "http://127.0.0.1:5000/cli?x=2",
        "http://127.0.0.1:0/callback",
        "http://127.0.0.1:70000/callback",
        "http://127.0.0.1:5000/callback#f",
        "http://localhost:5000/callback",
        "https://127.0.0.1:5000/callback",
        "http://127.0.0.2:5000/callback",
        "http://[::1]:5000/other",
    ],
)
def test_loopback_any_port_rule_keeps_scheme_host_path_and_query(requested: str) -> None:
    """Only the port may vary: another path, query, scheme or host does not match."""
    assert match_redirect_uri(requested, REGISTERED) is None


def test_loopback_port_rule_does_not_cross_ip_versions() -> None:
    """A registered 127.0.0.1 URI does not match [::1], and vice versa."""
    assert match_redirect_uri("http://[::1]:5000/cli?x=1", REGISTERED) is None
    assert match_redirect_uri("http://127.0.0.1:5000/x", ["http://[::1]/x"]) is None


def test_https_uri_gets_no_any_port_rule() -> None:
    """The port exception is for http loopback only; an https port must match exactly."""
    registered = ["https://app.example.com/cb", "https://127.0.0.1/cb"]
    assert match_redirect_uri("https://app.example.com:8443/cb", registered) is None
    assert match_redirect_uri("https://127.0.0.1:8443/cb", registered) is None


def test_is_loopback_redirect_recognizes_only_http_ip_literals() -> None:
    """Only http with 127.0.0.1 or [::1] counts as loopback."""
    assert is_loopback_redirect("http://127.0.0.1:80/x")
    assert is_loopback_redirect("http://[::1]")
    assert not is_loopback_redirect("http://localhost/x")
    assert not is_loopback_redirect("https://127.0.0.1/x")
    assert not is_loopback_redirect("http://127.0.0.1.evil.example/x")
