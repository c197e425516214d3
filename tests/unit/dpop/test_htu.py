"""The htu normal form (RFC 3986 sections 6.2.2 and 6.2.3) and what it refuses."""

from __future__ import annotations

import pytest
from tests.unit.dpop.proofs import URL, Client

from keyturn.dpop import DpopVerifier, normalize_uri
from keyturn.errors import InvalidDpopProof


def test_normal_form_of_an_equivalent_uri() -> None:
    """Case, default port, dot segments and encodings of unreserved characters go."""
    uri = "HTTPS://API.Example.COM:443/a/./b/../%7e/%2f?q=1#f"
    assert normalize_uri(uri, allow_query=True) == "https://api.example.com/a/~/%2F"


@pytest.mark.parametrize(
    "uri",
    [
        "https://user:pw@api.example.com/",
        "https://api.example.com/caf\u00e9",
        "https://api.example.com/a b",
        "https://api.example.com/%zz",
        "https://api.example.com:99999/",
        "https://api.example.com/?q=%z",
        "https:///path",
        "api.example.com/path",
        "https://api.example.com/" + "a" * 5000,
    ],
)
def test_uris_that_cannot_be_compared_are_refused(uri: str) -> None:
    """User information, non-RFC 3986 characters, bad ports or hosts are errors."""
    with pytest.raises(ValueError):
        normalize_uri(uri, allow_query=True)


async def test_unusable_request_url_refuses_the_proof(
    es256: Client, verifier: DpopVerifier
) -> None:
    """A request URL the server cannot normalise (a decoded path) fails closed."""
    with pytest.raises(InvalidDpopProof) as caught:
        await verifier.verify(es256.proof(), method="GET", url=URL + "/a b")
    assert caught.value.reason == "request_url"
