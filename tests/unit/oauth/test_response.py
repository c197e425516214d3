"""Authorization responses: code and error redirects keep the registered query
and carry state and iss (RFC 6749 4.1.2 and 4.1.2.1, RFC 9207)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
from tests.unit.oauth.support import ISSUER

from keyturn.errors import AuthorizationInvalidScope, LoginRequired
from keyturn.oauth.response import (
    append_query,
    error_redirect,
    redirect_for_error,
    success_redirect,
)


def query(uri: str) -> list[tuple[str, str]]:
    """The decoded query pairs of ``uri``, in order."""
    return parse_qsl(urlsplit(uri).query, keep_blank_values=True)


def test_success_redirect_carries_code_state_and_iss() -> None:
    """code, state and iss are added to a plain redirect URI."""
    uri = success_redirect("https://app/cb", code="c0de", state="s t&", issuer=ISSUER)
    assert uri.startswith("https://app/cb?")
    assert query(uri) == [("code", "c0de"), ("state", "s t&"), ("iss", ISSUER)]


def test_success_redirect_without_state_omits_it() -> None:
    """No state in the request, no state in the response."""
    uri = success_redirect("https://app/cb", code="c", state=None, issuer=ISSUER)
    assert [name for name, _ in query(uri)] == ["code", "iss"]


def test_error_redirect_keeps_existing_query_and_carries_iss_and_state() -> None:
    """The registered ?tenant=7 survives; error, description, state, iss follow."""
    uri = error_redirect(
        "https://app/cb?tenant=7",
        error="access_denied",
        description="The user denied the request.",
        state="xyz",
        issuer=ISSUER,
    )
    assert uri.startswith("https://app/cb?tenant=7&")
    assert query(uri) == [
        ("tenant", "7"),
        ("error", "access_denied"),
        ("error_description", "The user denied the request."),
        ("state", "xyz"),
        ("iss", ISSUER),
    ]


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("https://app/cb", "https://app/cb?a=1"),
        ("https://app/cb?", "https://app/cb?a=1"),
        ("https://app/cb?x=1", "https://app/cb?x=1&a=1"),
        ("https://app/cb?x=1&", "https://app/cb?x=1&a=1"),
        ("http://127.0.0.1:5000/cb", "http://127.0.0.1:5000/cb?a=1"),
    ],
)
def test_append_query_appends_to_the_uri_as_registered(uri: str, expected: str) -> None:
    """Parameters are appended to the string, never by re-serializing it."""
    assert append_query(uri, {"a": "1"}) == expected


def test_append_query_refuses_a_fragment() -> None:
    """A fragment would swallow the response parameters; it is a bug upstream."""
    with pytest.raises(ValueError):
        append_query("https://app/cb#x", {"a": "1"})


def test_error_description_is_reduced_to_the_rfc_character_set() -> None:
    """Quotes, backslashes, newlines and non-ASCII never reach the URI."""
    uri = error_redirect(
        "https://app/cb",
        error="invalid_request",
        description='a"b\\c\nd\u00e9',
        state=None,
        issuer=ISSUER,
    )
    assert dict(query(uri))["error_description"] == "a?b?c?d?"


def test_redirect_for_error_uses_the_bound_uri_state_and_code() -> None:
    """A parser error redirects to its validated URI with its code and state."""
    error = AuthorizationInvalidScope(
        "no such scope", redirect_uri="https://app/cb?tenant=7", state="s"
    )
    pairs = dict(query(redirect_for_error(error, issuer=ISSUER)))
    assert pairs == {
        "tenant": "7",
        "error": "invalid_scope",
        "error_description": "no such scope",
        "state": "s",
        "iss": ISSUER,
    }


def test_redirect_for_error_raised_by_the_web_layer() -> None:
    """login_required built by the caller from a parsed request redirects too."""
    error = LoginRequired(redirect_uri="https://app/cb", state="s")
    assert dict(query(redirect_for_error(error, issuer=ISSUER)))["error"] == "login_required"


def test_redirect_for_error_without_a_validated_uri_refuses() -> None:
    """An error with no trusted redirect URI cannot become a redirect."""
    with pytest.raises(ValueError):
        redirect_for_error(LoginRequired(), issuer=ISSUER)
