"""Forged and malformed proofs, one per rule of RFC 9449 section 4.3: each is refused
with InvalidDpopProof, and ``reason`` shows that the intended rule fired."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import ECKey, Key, OctKey, OKPKey, RSAKey
from tests.unit.dpop.proofs import DROP, T0, URL, Client, forge, random_token, sign

from keyturn.clock import FrozenClock
from keyturn.dpop import DpopVerifier, MemoryReplayCache
from keyturn.errors import InvalidDpopProof, NotAuthenticated


async def refused(
    verifier: DpopVerifier,
    proof: object,
    *,
    method: str = "GET",
    url: str = URL,
    access_token: str | None = None,
    expected_jkt: str | None = None,
) -> str:
    """Verify ``proof``; it must be refused. Returns the reason."""
    with pytest.raises(InvalidDpopProof) as caught:
        await verifier.verify(
            proof,  # type: ignore[arg-type]
            method=method,
            url=url,
            access_token=access_token,
            expected_jkt=expected_jkt,
        )
    assert caught.value.code == "invalid_dpop_proof"
    assert caught.value.detail == InvalidDpopProof.default_detail  # one opaque answer
    return caught.value.reason


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- how many proofs, and what the value looks like --------------------------------


async def test_no_proof_is_refused(verifier: DpopVerifier) -> None:
    """A request without a DPoP header (None, no values, or empty) has no proof."""
    assert await refused(verifier, None) == "missing"
    assert await refused(verifier, []) == "missing"
    assert await refused(verifier, "  ") == "missing"


async def test_two_proofs_are_refused(es256: Client, verifier: DpopVerifier) -> None:
    """Two DPoP headers, or two values folded into one with a comma, are refused."""
    first, second = es256.proof(), es256.proof()
    assert await refused(verifier, [first, second]) == "multiple"
    assert await refused(verifier, f"{first}, {second}") == "multiple"


@pytest.mark.parametrize(
    "garbage",
    [
        "not-a-jwt",
        "a.b",
        "a.b.c.d",
        "eyJ.eyJ.sig=",
        b64(b"not json") + "." + b64(b"{}") + ".c2ln",
        b64(b'["typ"]') + "." + b64(b"{}") + ".c2ln",
        "\u00e9" * 10,
    ],
)
async def test_non_jws_garbage_is_refused(garbage: str, verifier: DpopVerifier) -> None:
    """Anything that is not a JWS compact serialisation with a JSON header is refused."""
    assert await refused(verifier, garbage) == "malformed"


async def test_oversized_proof_is_refused_unparsed(es256: Client, verifier: DpopVerifier) -> None:
    """A proof longer than 4096 characters is refused before parsing."""
    proof = es256.proof(claims={"pad": "x" * 4096})
    assert await refused(verifier, proof) == "too_large"


async def test_non_object_claims_are_refused(es256: Client, verifier: DpopVerifier) -> None:
    """A validly signed payload that is not a JSON object is refused."""
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": es256.jwk}
    assert await refused(verifier, sign(header, b"[1, 2]", es256.key)) == "malformed_claims"


# --- the header: typ, alg, jwk ------------------------------------------------------


@pytest.mark.parametrize("typ", ["JWT", "at+jwt", "dpop", DROP])
async def test_wrong_or_missing_typ_is_refused(
    typ: object, es256: Client, verifier: DpopVerifier
) -> None:
    """Only typ dpop+jwt is a proof: an access token or plain JWT is not."""
    assert await refused(verifier, es256.proof(header={"typ": typ})) == "typ"


async def test_alg_none_is_refused(es256: Client, verifier: DpopVerifier) -> None:
    """An unsigned proof (alg none) is refused, with or without a signature segment."""
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": es256.jwk}
    claims = {"jti": "j", "htm": "GET", "htu": URL, "iat": T0}
    assert await refused(verifier, forge(header, claims, b"")) == "malformed"
    assert await refused(verifier, forge(header, claims)) == "alg"


async def test_hs256_proof_is_refused(es256: Client, verifier: DpopVerifier) -> None:
    """A MAC (HS256) is not a proof of possession, whatever key the header names."""
    secret = OctKey.import_key(b"k" * 32)
    assert await refused(verifier, es256.proof(alg="HS256", sign_with=secret)) == "alg"


async def test_alg_outside_the_configured_list_is_refused(
    eddsa: Client, cache: MemoryReplayCache, clock: FrozenClock
) -> None:
    """A server that allows only ES256 refuses an EdDSA proof."""
    only_es256 = DpopVerifier(cache, clock, algorithms=["ES256"])
    assert await refused(only_es256, eddsa.proof()) == "alg"


async def test_missing_jwk_is_refused(es256: Client, verifier: DpopVerifier) -> None:
    """A proof must carry its public key in the jwk header."""
    assert await refused(verifier, es256.proof(header={"jwk": DROP})) == "missing_jwk"


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "k"])
async def test_private_key_material_in_jwk_is_refused(
    member: str, es256: Client, verifier: DpopVerifier
) -> None:
    """A jwk carrying any private member (d, p, q, dp, dq, qi, k) is refused."""
    jwk = {**es256.jwk, member: b64(b"secret")}
    assert await refused(verifier, es256.proof(header={"jwk": jwk})) == "private_jwk"


async def test_whole_private_jwk_is_refused(es256: Client, verifier: DpopVerifier) -> None:
    """A client that leaks its private key in the header gets no proof accepted."""
    jwk = dict(es256.key.as_dict(private=True))
    assert await refused(verifier, es256.proof(header={"jwk": jwk})) == "private_jwk"


@pytest.mark.parametrize(
    "extra",
    [
        {"jku": "https://evil.example/jwks"},
        {"x5u": "https://evil.example/cert"},
        {"x5c": ["MIIB"]},
        {"crit": ["exp"], "exp": 1},
        {"b64": False, "crit": ["b64"]},
        {"cty": "JWT"},
    ],
)
async def test_headers_naming_other_keys_or_changing_the_jws_are_refused(
    extra: dict[str, object], es256: Client, verifier: DpopVerifier
) -> None:
    """jku/x5u/x5c (keys from elsewhere), crit, b64 and other members are refused."""
    header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": es256.jwk, **extra}
    claims = {"jti": "j", "htm": "GET", "htu": URL, "iat": T0}
    assert await refused(verifier, forge(header, claims)) == "unexpected_header"


async def test_key_unfit_for_the_alg_is_refused(
    es256: Client, verifier: DpopVerifier, make_client: Callable[[Key, str], Client]
) -> None:
    """An Ed25519 jwk cannot make an ES256 proof, nor a P-256 key an ES384 one."""
    ed = make_client(OKPKey.generate_key("Ed25519"), "EdDSA")
    claims = {"jti": "j", "htm": "GET", "htu": URL, "iat": T0}
    ed_as_es256 = forge({"typ": "dpop+jwt", "alg": "ES256", "jwk": ed.jwk}, claims)
    p256_as_es384 = forge({"typ": "dpop+jwt", "alg": "ES384", "jwk": es256.jwk}, claims)
    assert await refused(verifier, ed_as_es256) == "key_alg_mismatch"
    assert await refused(verifier, p256_as_es384) == "key_alg_mismatch"


async def test_weak_rsa_key_is_refused(
    verifier: DpopVerifier, make_client: Callable[[Key, str], Client]
) -> None:
    """RSA keys under 2048 bits are refused."""
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (the weak key under test)
    with pytest.warns(match="Key size"):
        client = make_client(RSAKey.import_key(weak), "RS256")
        proof = client.proof()
    assert await refused(verifier, proof) == "weak_jwk"


async def test_malformed_jwk_is_refused(es256: Client, verifier: DpopVerifier) -> None:
    """A jwk that is not a key (unknown kty, point off the curve) is refused."""
    assert await refused(verifier, es256.proof(header={"jwk": {"kty": "XX"}})) == "invalid_jwk"
    off_curve = {**es256.jwk, "y": es256.jwk["x"]}
    assert await refused(verifier, es256.proof(header={"jwk": off_curve})) == "invalid_jwk"


# --- the signature -----------------------------------------------------------------


async def test_tampered_proof_is_refused(es256: Client, verifier: DpopVerifier) -> None:
    """Changing the payload after signing breaks the signature."""
    header, _, signature = es256.proof().split(".")
    other = b64(json.dumps({"jti": "x", "htm": "GET", "htu": URL, "iat": 1_800_000_000}).encode())
    assert await refused(verifier, f"{header}.{other}.{signature}") == "signature"


async def test_proof_signed_by_another_key_is_refused(
    es256: Client, verifier: DpopVerifier
) -> None:
    """The header's jwk must be the signing key: another key's signature fails."""
    thief = ECKey.generate_key("P-256")
    assert await refused(verifier, es256.proof(sign_with=thief)) == "signature"


# --- the claims ------------------------------------------------------------------------


async def test_htm_mismatch_is_refused(es256: Client, verifier: DpopVerifier) -> None:
    """A proof for POST does not authorise GET; methods are case-sensitive."""
    assert await refused(verifier, es256.proof("POST"), method="GET") == "htm"
    assert await refused(verifier, es256.proof("get"), method="GET") == "htm"


@pytest.mark.parametrize(
    "htu",
    [
        "https://api.example.com/other",
        "https://api.example.com/resource/",
        "https://evil.example.com/resource",
        "http://api.example.com/resource",
        "https://api.example.com:8443/resource",
        "https://api.example.com/Resource",
    ],
)
async def test_htu_for_another_target_is_refused(
    htu: str, es256: Client, verifier: DpopVerifier
) -> None:
    """A proof made for another path, host, scheme or port is refused."""
    assert await refused(verifier, es256.proof(htu=htu)) == "htu"


@pytest.mark.parametrize(
    "htu",
    [
        URL + "?x=1",
        URL + "#frag",
        "https://user@api.example.com/resource",
        "/resource",
        "ftp://api.example.com/resource",
    ],
)
async def test_htu_with_query_fragment_or_not_absolute_is_refused(
    htu: str, es256: Client, verifier: DpopVerifier
) -> None:
    """htu carries no query or fragment (section 4.2) and must be an absolute http(s) URI."""
    reason = await refused(verifier, es256.proof(htu=htu), url=URL + "?x=1")
    assert reason == "invalid_claim:htu"


async def test_iat_too_old_is_refused(
    es256: Client, verifier: DpopVerifier, clock: FrozenClock
) -> None:
    """A proof made more than 60 s ago is refused (--dpop-max-age)."""
    proof = es256.proof()
    clock.advance(61)
    assert await refused(verifier, proof) == "iat_too_old"


async def test_iat_in_the_future_is_refused(
    es256: Client, verifier: DpopVerifier, clock: FrozenClock
) -> None:
    """A proof dated more than the 5 s skew ahead is refused (pre-made proofs)."""
    proof = es256.proof(claims={"iat": int(clock.now()) + 6})
    assert await refused(verifier, proof) == "iat_in_future"


@pytest.mark.parametrize(
    ("iat", "reason"),
    [
        (DROP, "missing_claim:iat"),
        ("1800000000", "invalid_claim:iat"),
        (True, "invalid_claim:iat"),
        (float("inf"), "invalid_claim:iat"),
        (10**400, "iat_in_future"),
    ],
)
async def test_missing_or_mistyped_iat_is_refused(
    iat: object, reason: str, es256: Client, verifier: DpopVerifier
) -> None:
    """iat must be a finite JSON number."""
    assert await refused(verifier, es256.proof(claims={"iat": iat})) == reason


@pytest.mark.parametrize(
    ("jti", "reason"),
    [
        (DROP, "missing_claim:jti"),
        ("", "invalid_claim:jti"),
        (42, "invalid_claim:jti"),
        ("j" * 257, "invalid_claim:jti"),
    ],
)
async def test_missing_empty_or_oversized_jti_is_refused(
    jti: object, reason: str, es256: Client, verifier: DpopVerifier
) -> None:
    """jti must be a non-empty string of at most 256 characters."""
    assert await refused(verifier, es256.proof(claims={"jti": jti})) == reason


@pytest.mark.parametrize("claim", ["htm", "htu"])
async def test_missing_htm_or_htu_is_refused(
    claim: str, es256: Client, verifier: DpopVerifier
) -> None:
    """htm and htu are required claims."""
    assert await refused(verifier, es256.proof(claims={claim: DROP})) == f"missing_claim:{claim}"


async def test_replayed_proof_is_refused(
    es256: Client, verifier: DpopVerifier, clock: FrozenClock
) -> None:
    """The same proof is accepted once; a second use within its window is refused."""
    proof = es256.proof()
    await verifier.verify(proof, method="GET", url=URL)
    clock.advance(59)
    assert await refused(verifier, proof) == "replayed"


async def test_reused_jti_in_a_new_proof_is_refused(
    es256: Client, verifier: DpopVerifier, clock: FrozenClock
) -> None:
    """A client that re-signs with the same jti for the same target is refused."""
    await verifier.verify(es256.proof(claims={"jti": "same"}), method="GET", url=URL)
    clock.advance(1)
    assert await refused(verifier, es256.proof(claims={"jti": "same"})) == "replayed"


async def test_missing_ath_with_a_token_is_refused(es256: Client, verifier: DpopVerifier) -> None:
    """A proof sent with an access token must carry ath."""
    reason = await refused(verifier, es256.proof(), access_token=random_token())
    assert reason == "missing_claim:ath"


async def test_ath_of_another_token_is_refused(es256: Client, verifier: DpopVerifier) -> None:
    """A proof made for one token cannot be used with another (stolen) token."""
    proof = es256.proof(access_token=random_token())
    assert await refused(verifier, proof, access_token=random_token()) == "ath"


async def test_key_other_than_the_bound_one_is_refused(
    es256: Client, eddsa: Client, verifier: DpopVerifier
) -> None:
    """A stolen token bound to one key cannot be used with a proof by another key."""
    token = random_token()
    proof = eddsa.proof(access_token=token)
    reason = await refused(verifier, proof, access_token=token, expected_jkt=es256.jkt)
    assert reason == "jkt_mismatch"


async def test_mistyped_nonce_claim_is_refused(es256: Client, verifier: DpopVerifier) -> None:
    """A nonce claim that is not a string is refused even when nonces are off."""
    assert await refused(verifier, es256.proof(claims={"nonce": 7})) == "invalid_claim:nonce"


async def test_refused_proofs_take_no_cache_entry(
    es256: Client, verifier: DpopVerifier, cache: MemoryReplayCache
) -> None:
    """Only a proof that passed every check is recorded, so forgeries cannot fill the cache."""
    await refused(verifier, es256.proof("POST"))
    await refused(verifier, es256.proof(sign_with=ECKey.generate_key("P-256")))
    assert len(cache) == 0


def test_errors_are_401_kinds_with_stable_codes() -> None:
    """Both DPoP errors are authentication failures (401 by the error map) with RFC codes."""
    assert issubclass(InvalidDpopProof, NotAuthenticated)
    assert InvalidDpopProof("x").code == "invalid_dpop_proof"
