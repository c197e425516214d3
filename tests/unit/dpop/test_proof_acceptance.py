"""Proofs that must be accepted: each algorithm, the RFC's own example, the bindings
(``ath``, ``cnf.jkt``) and the ``htu`` normalisations of RFC 9449 section 4.3."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from joserfc.jwk import ECKey, Key, RSAKey
from tests.unit.dpop.proofs import URL, Client, random_token

from keyturn.clock import FrozenClock
from keyturn.dpop import DpopVerifier, MemoryReplayCache

#: RFC 9449 figure 3: a proof for POST https://server.example.com/token at iat
#: 1562262616, and (section 6.1) the thumbprint of its key.
RFC_PROOF = (
    "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0"
    "VjNoUklDUkRZOXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10"
    "NnY5VERWclUwQ2R2R1JEQSIsImNydiI6IlAtMjU2In19.eyJqdGkiOiItQndDM0VTYzZhY2MybFRjIiwiaHRtIjoi"
    "UE9TVCIsImh0dSI6Imh0dHBzOi8vc2VydmVyLmV4YW1wbGUuY29tL3Rva2VuIiwiaWF0IjoxNTYyMjYyNjE2fQ.2-G"
    "xA6T8lP4vfrg8v-FdWP0A0zdrj8igiMLvqRMUvwnQg4PtFLbdLXiOSsX0x7NVY-FNyJK70nfbV37xRZT3Lg"
)
RFC_JKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"


@pytest.mark.parametrize("client_name", ["es256", "eddsa", "rs256"])
async def test_proof_of_each_algorithm_is_accepted(
    client_name: str, request: pytest.FixtureRequest, verifier: DpopVerifier
) -> None:
    """An ES256, EdDSA or RS256 proof for this request yields its key's thumbprint."""
    client: Client = request.getfixturevalue(client_name)
    proof = client.proof("POST", URL, claims={"jti": "jti-1"})

    verified = await verifier.verify(proof, method="POST", url=URL)

    assert verified.jkt == client.jkt
    assert (verified.jti, verified.htm, verified.htu) == ("jti-1", "POST", URL)
    assert verified.iat == client.clock.now()
    assert verified.fresh_nonce is None


@pytest.mark.parametrize(
    ("key", "alg"),
    [(ECKey.generate_key("P-384"), "ES384"), (None, "PS256")],
)
async def test_es384_and_ps256_proofs_are_accepted(
    key: Key | None,
    alg: str,
    rsa_key: RSAKey,
    make_client: Callable[[Key, str], Client],
    verifier: DpopVerifier,
) -> None:
    """The other default algorithms verify too."""
    client = make_client(key or rsa_key, alg)
    verified = await verifier.verify(client.proof(), method="GET", url=URL)
    assert verified.jkt == client.jkt


async def test_rfc_9449_example_proof_verifies() -> None:
    """The RFC's own example proof is accepted at its time, with the RFC's jkt."""
    verifier = DpopVerifier(MemoryReplayCache(FrozenClock(1562262616)), FrozenClock(1562262616))

    verified = await verifier.verify(
        RFC_PROOF, method="POST", url="https://server.example.com/token"
    )

    assert verified.jkt == RFC_JKT
    assert verified.jti == "-BwC3ESc6acc2lTc"


async def test_proof_bound_to_the_presented_token_and_key_is_accepted(
    es256: Client, verifier: DpopVerifier
) -> None:
    """With the token's hash in ath and the token's cnf.jkt, a resource proof passes."""
    token = random_token()
    proof = es256.proof(access_token=token)

    verified = await verifier.verify(
        proof, method="GET", url=URL, access_token=token, expected_jkt=es256.jkt
    )

    assert verified.jkt == es256.jkt


async def test_one_header_value_in_a_list_is_accepted(
    es256: Client, verifier: DpopVerifier
) -> None:
    """headers.getlist("dpop") with one value is the same as the value."""
    verified = await verifier.verify([es256.proof()], method="GET", url=URL)
    assert verified.jkt == es256.jkt


async def test_iat_at_the_edges_of_the_window_is_accepted(
    es256: Client, verifier: DpopVerifier, clock: FrozenClock
) -> None:
    """A proof exactly 60 s old, and one 5 s ahead (clock skew), still pass."""
    old = es256.proof(claims={"iat": int(clock.now()) - 60})
    ahead = es256.proof(claims={"iat": int(clock.now()) + 5})

    assert (await verifier.verify(old, method="GET", url=URL)).iat == clock.now() - 60
    assert (await verifier.verify(ahead, method="GET", url=URL)).iat == clock.now() + 5


@pytest.mark.parametrize(
    ("htu", "request_url"),
    [
        ("https://api.example.com/resource", "https://api.example.com/resource?x=1&y=2"),
        ("https://api.example.com/resource", "https://api.example.com/resource#frag"),
        ("HTTPS://API.Example.COM/resource", "https://api.example.com/resource"),
        ("https://api.example.com:443/resource", "https://api.example.com/resource"),
        ("http://api.example.com:80/resource", "http://api.example.com/resource"),
        ("https://api.example.com:/resource", "https://api.example.com/resource"),
        ("https://api.example.com", "https://api.example.com/"),
        ("https://api.example.com/a/./b/../resource", "https://api.example.com/a/resource"),
        ("https://api.example.com/%7Euser/%2f", "https://api.example.com/~user/%2F"),
        ("https://[::1]:443/resource", "https://[::1]/resource"),
        ("https://api.example.com:8443/resource", "https://api.example.com:8443/resource"),
    ],
)
async def test_equivalent_uris_match_after_normalisation(
    htu: str, request_url: str, es256: Client, verifier: DpopVerifier
) -> None:
    """htu and the request URL are compared after RFC 3986 6.2.2/6.2.3 normalisation,
    ignoring the request's query and fragment."""
    verified = await verifier.verify(es256.proof(htu=htu), method="GET", url=request_url)
    assert verified.jkt == es256.jkt
