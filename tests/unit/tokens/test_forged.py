"""Forged, malformed and out-of-policy tokens: every one raises InvalidToken, and
nothing else (issue #4 item 8, SEC-33..SEC-49)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import secrets
import socket
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from joserfc.jwk import ECKey, OKPKey

from keyturn.clock import FrozenClock
from keyturn.errors import InvalidToken
from keyturn.keys.records import SigningKey, generate_key, jws_algorithm, load_private_key
from keyturn.keys.ring import KeyRing
from keyturn.settings import Settings
from keyturn.tokens.access import MAX_TOKEN_LENGTH, TokenVerifier

NOW = 1_800_000_000
ISSUER = "https://auth.example.com"
LEEWAY = 5


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def seg(value: Any) -> str:
    """A base64url segment of ``value`` (JSON-encoded unless already bytes)."""
    return b64(value if isinstance(value, bytes) else json.dumps(value).encode())


@pytest.fixture(scope="module")
def es_key() -> SigningKey:
    """The real ES256 key: the ring's signing key."""
    return generate_key("ES256", now=NOW - 100)


@pytest.fixture(scope="module")
def ed_key() -> SigningKey:
    """The real EdDSA key, retired a moment ago but still verifying."""
    return generate_key("EdDSA", now=NOW - 200).retire(NOW - 10)


@pytest.fixture
def clock() -> FrozenClock:
    """Frozen at NOW."""
    return FrozenClock(NOW)


@pytest.fixture
def settings() -> Settings:
    """Issuer and audience both ISSUER, 5 s leeway."""
    return Settings(issuer=ISSUER, clock_leeway=LEEWAY)


@pytest.fixture
def verifier(
    es_key: SigningKey, ed_key: SigningKey, settings: Settings, clock: FrozenClock
) -> TokenVerifier:
    """A verifier over the real ring, cache off so every call runs the full check."""
    ring = KeyRing.from_settings([ed_key, es_key], settings, now=clock.now())
    return TokenVerifier(ring, settings, clock, cache_entries=0)


@pytest.fixture
def good_claims() -> dict[str, Any]:
    """A claim set that passes every rule at NOW."""
    return {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": ISSUER,
        "exp": NOW + 600,
        "iat": NOW,
        "jti": "jti-1",
        "sid": "sid-1",
        "scope": "",
        "roles": ["admin"],
    }


def sign_real(key: SigningKey, header: Any, payload: Any) -> str:
    """Sign with the genuine private key (to test the rules after the signature)."""
    signing_input = f"{seg(header)}.{seg(payload)}"
    signature = jws_algorithm(key.alg).sign(signing_input.encode(), load_private_key(key))
    return f"{signing_input}.{b64(signature)}"


def at_header(key: SigningKey, **extra: Any) -> dict[str, Any]:
    return {"typ": "at+jwt", "alg": key.alg, "kid": key.kid, **extra}


def rejects(verifier: TokenVerifier, token: Any, reason: str | None = None) -> None:
    """``token`` raises InvalidToken (any other exception fails the test)."""
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(token)
    if reason is not None:
        assert caught.value.reason == reason


def test_a_genuine_token_passes(
    verifier: TokenVerifier, es_key: SigningKey, good_claims: dict[str, Any]
) -> None:
    """Control: the genuine claim set signed by the real key verifies."""
    assert verifier.verify(sign_real(es_key, at_header(es_key), good_claims)).sub == "user-1"


# --- alg none -----------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", ["", "c2lnbmF0dXJl"])
def test_alg_none_in_any_casing(
    verifier: TokenVerifier,
    es_key: SigningKey,
    good_claims: dict[str, Any],
    alg: str,
    signature: str,
) -> None:
    """An unsigned token (alg none, any casing, with or without a signature) fails."""
    header = {"typ": "at+jwt", "alg": alg, "kid": es_key.kid}
    rejects(verifier, f"{seg(header)}.{seg(good_claims)}.{signature}")


# --- key-type confusion -------------------------------------------------------------


def public_forms(key: SigningKey) -> dict[str, bytes]:
    """The public key of ``key`` in every encoding an attacker might HMAC with."""
    public = load_private_key(key).as_dict(private=False)
    if key.alg == "ES256":
        native_ec = ECKey.import_key(public).public_key
        raw = native_ec.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        pem = native_ec.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        der = native_ec.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    else:
        native_ed = OKPKey.import_key(public).public_key
        raw = native_ed.public_bytes(Encoding.Raw, PublicFormat.Raw)
        pem = native_ed.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        der = native_ed.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return {
        "pem": pem,
        "der": der,
        "jwk": json.dumps(dict(key.public_jwk)).encode(),
        "jwk-compact": json.dumps(public, separators=(",", ":")).encode(),
        "raw": raw,
    }


@pytest.mark.parametrize("which", ["es", "ed"])
@pytest.mark.parametrize("form", ["pem", "der", "jwk", "jwk-compact", "raw"])
def test_hs256_keyed_with_the_public_key(
    verifier: TokenVerifier,
    es_key: SigningKey,
    ed_key: SigningKey,
    good_claims: dict[str, Any],
    which: str,
    form: str,
) -> None:
    """HMAC tokens keyed with our public key (PEM, DER, JWK JSON, raw) fail: the kid's
    key pins its own algorithm."""
    key = es_key if which == "es" else ed_key
    secret = public_forms(key)[form]
    header = {"typ": "at+jwt", "alg": "HS256", "kid": key.kid}
    signing_input = f"{seg(header)}.{seg(good_claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    rejects(verifier, f"{signing_input}.{b64(mac)}", "alg")


def test_eddsa_token_relabelled_as_es256(
    verifier: TokenVerifier, ed_key: SigningKey, good_claims: dict[str, Any]
) -> None:
    """A genuine EdDSA signature presented under alg ES256 fails on the algorithm pin."""
    token = sign_real(ed_key, at_header(ed_key), good_claims)
    _, payload, signature = token.split(".")
    relabelled = seg({"typ": "at+jwt", "alg": "ES256", "kid": ed_key.kid})
    rejects(verifier, f"{relabelled}.{payload}.{signature}", "alg")


# --- attacker keys ------------------------------------------------------------------


def attacker_sign(header: dict[str, Any], payload: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Sign with a fresh attacker P-256 key; returns the token and its public JWK."""
    private = ec.generate_private_key(ec.SECP256R1())
    signing_input = f"{seg(header)}.{seg(payload)}"
    der = private.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    jwk = ECKey.import_key(private.public_key()).as_dict(private=False)
    return f"{signing_input}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}", jwk


def test_attacker_key_with_the_real_kid(
    verifier: TokenVerifier, es_key: SigningKey, good_claims: dict[str, Any]
) -> None:
    """A token signed by another P-256 key under our kid fails the signature check."""
    token, _ = attacker_sign(at_header(es_key), good_claims)
    rejects(verifier, token, "signature")


def test_embedded_jwk_header_is_never_trusted(
    verifier: TokenVerifier, es_key: SigningKey, good_claims: dict[str, Any]
) -> None:
    """A jwk header carrying the attacker's own key (with our kid or theirs) fails."""
    private = ec.generate_private_key(ec.SECP256R1())
    attacker = ECKey.import_key(private)
    jwk = attacker.as_dict(private=False)
    for kid in (es_key.kid, attacker.thumbprint()):
        header = {"typ": "at+jwt", "alg": "ES256", "kid": kid, "jwk": jwk}
        signing_input = f"{seg(header)}.{seg(good_claims)}"
        signature = jws_algorithm("ES256").sign(signing_input.encode(), attacker)
        rejects(verifier, f"{signing_input}.{b64(signature)}", "key_header")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Fail the test on any outbound connection attempt; record what was tried."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


@pytest.mark.parametrize("name", ["jku", "x5u"])
def test_url_headers_are_refused_without_a_request(
    verifier: TokenVerifier,
    es_key: SigningKey,
    good_claims: dict[str, Any],
    no_network: list[object],
    name: str,
) -> None:
    """jku/x5u pointing at an attacker URL fail, and no connection is attempted."""
    header = at_header(es_key, **{name: "http://127.0.0.1:9/keys.json"})
    token, _ = attacker_sign(header, good_claims)
    rejects(verifier, token, "key_header")
    rejects(verifier, sign_real(es_key, header, good_claims), "key_header")
    assert no_network == []


@pytest.mark.parametrize("name", ["x5c", "x5t", "x5t#S256"])
def test_certificate_headers_are_refused(
    verifier: TokenVerifier, es_key: SigningKey, good_claims: dict[str, Any], name: str
) -> None:
    """x5c/x5t headers are refused even on a genuinely signed token."""
    value: Any = ["MIIB"] if name == "x5c" else "abc"
    rejects(verifier, sign_real(es_key, at_header(es_key, **{name: value}), good_claims))


# --- broken signatures --------------------------------------------------------------


def test_es256_zero_signature(
    verifier: TokenVerifier, es_key: SigningKey, good_claims: dict[str, Any]
) -> None:
    """r = s = 0 (64 zero bytes, "psychic signature") fails (CVE-2022-21449)."""
    token = f"{seg(at_header(es_key))}.{seg(good_claims)}.{b64(bytes(64))}"
    rejects(verifier, token, "signature")


@pytest.mark.parametrize(
    "token", ["AAAA.AAAA.AAAA", f"{b64(bytes(30))}.{b64(bytes(30))}.{b64(bytes(64))}"]
)
def test_all_zero_jws(verifier: TokenVerifier, token: str) -> None:
    """A JWS made only of zero bytes fails (not JSON, no key)."""
    rejects(verifier, token, "malformed")


def test_signature_of_the_wrong_length(
    verifier: TokenVerifier, es_key: SigningKey, good_claims: dict[str, Any]
) -> None:
    """DER-encoded or truncated ES256 signatures fail: only raw 64-byte r||s counts."""
    token = sign_real(es_key, at_header(es_key), good_claims)
    head, _, signature = token.rpartition(".")
    raw = base64.urlsafe_b64decode(signature + "==")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    for bad in (der, raw[:63], raw + b"\x00"):
        rejects(verifier, f"{head}.{b64(bad)}", "signature")


def test_tampered_payload(
    verifier: TokenVerifier, es_key: SigningKey, good_claims: dict[str, Any]
) -> None:
    """Changing the payload under a genuine signature fails."""
    token = sign_real(es_key, at_header(es_key), good_claims)
    header, _, signature = token.split(".")
    forged = seg({**good_claims, "sub": "admin", "roles": ["root"]})
    rejects(verifier, f"{header}.{forged}.{signature}", "signature")


def test_tampered_header(
    verifier: TokenVerifier, es_key: SigningKey, good_claims: dict[str, Any]
) -> None:
    """Re-encoding the header (same meaning, other bytes) under a genuine signature fails."""
    token = sign_real(es_key, at_header(es_key), good_claims)
    _, payload, signature = token.split(".")
    header = b64(json.dumps(at_header(es_key), indent=1).encode())
    rejects(verifier, f"{header}.{payload}.{signature}", "signature")


# --- kid --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kid", ["unknown", "../../dev/null", "/dev/null", "' OR 1=1--", "", "x" * 300]
)
def test_unknown_or_hostile_kid(
    verifier: TokenVerifier, es_key: SigningKey, good_claims: dict[str, Any], kid: str
) -> None:
    """A kid that is not in the ring fails as unknown, whatever it looks like."""
    header = {"typ": "at+jwt", "alg": "ES256", "kid": kid}
    rejects(verifier, sign_real(es_key, header, good_claims), "unknown_kid")


@pytest.mark.parametrize("kid", [None, 5, ["k"], {"k": 1}])
def test_kid_of_the_wrong_type_or_missing(
    verifier: TokenVerifier, es_key: SigningKey, good_claims: dict[str, Any], kid: Any
) -> None:
    """A missing or non-string kid fails."""
    header = {"typ": "at+jwt", "alg": "ES256"}
    if kid is not None:
        header["kid"] = kid
    rejects(verifier, sign_real(es_key, header, good_claims), "kid")


# --- header structure ---------------------------------------------------------------


def test_duplicate_header_members(
    verifier: TokenVerifier, es_key: SigningKey, good_claims: dict[str, Any]
) -> None:
    """{"alg":"ES256","alg":"none"} fails even with a genuine signature over it."""
    raw = (
        '{"typ":"at+jwt","alg":"ES256","alg":"none","kid":"%s"}' % es_key.kid  # noqa: UP031
    ).encode()
    rejects(verifier, sign_real(es_key, raw, good_claims), "duplicate_member")
    raw_first = ('{"typ":"at+jwt","alg":"none","alg":"ES256","kid":"%s"}' % es_key.kid).encode()  # noqa: UP031
    rejects(verifier, sign_real(es_key, raw_first, good_claims), "duplicate_member")


def test_duplicate_payload_members(
    verifier: TokenVerifier, es_key: SigningKey, good_claims: dict[str, Any]
) -> None:
    """A payload with "sub" twice fails even with a genuine signature."""
    body = json.dumps(good_claims)[:-1] + ', "sub": "admin"}'
    rejects(verifier, sign_real(es_key, at_header(es_key), body.encode()), "duplicate_member")


@pytest.mark.parametrize(
    "extra",
    [
        {"crit": ["exp"], "exp": NOW},
        {"crit": ["b64"], "b64": False},
        {"crit": []},
        {"crit": "nonsense"},
    ],
)
def test_crit_is_refused(
    verifier: TokenVerifier, es_key: SigningKey, good_claims: dict[str, Any], extra: dict[str, Any]
) -> None:
    """Any crit header (unknown extension, b64, empty, malformed) fails."""
    rejects(verifier, sign_real(es_key, at_header(es_key, **extra), good_claims), "crit")


def test_b64_false_without_crit_is_refused(
    verifier: TokenVerifier, es_key: SigningKey, good_claims: dict[str, Any]
) -> None:
    """b64 (RFC 7797 unencoded payload) is never accepted in access tokens."""
    rejects(verifier, sign_real(es_key, at_header(es_key, b64=False), good_claims), "b64")


def test_unexpected_header_member(
    verifier: TokenVerifier, es_key: SigningKey, good_claims: dict[str, Any]
) -> None:
    """Header members beyond typ/alg/kid (e.g. cty, zip, enc) fail."""
    for extra in ({"cty": "JWT"}, {"zip": "DEF"}, {"enc": "A256GCM"}):
        token = sign_real(es_key, at_header(es_key, **extra), good_claims)
        rejects(verifier, token, "unexpected_header")


@pytest.mark.parametrize("typ", [None, "JWT", "jwt", "at+jwt2", "application/jwt", "rt+jwt", 1])
def test_wrong_or_missing_typ(
    verifier: TokenVerifier, es_key: SigningKey, good_claims: dict[str, Any], typ: Any
) -> None:
    """Only at+jwt (RFC 9068) is an access token: JWT, ID-token-like and others fail."""
    header: dict[str, Any] = {"alg": "ES256", "kid": es_key.kid}
    if typ is not None:
        header["typ"] = typ
    rejects(verifier, sign_real(es_key, header, good_claims), "typ")


# --- claims -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "iss", [None, "https://evil.example", ISSUER.upper(), ISSUER + "/", "", ["x"], 1]
)
def test_wrong_issuer(
    verifier: TokenVerifier, es_key: SigningKey, good_claims: dict[str, Any], iss: Any
) -> None:
    """iss missing, another, upper-cased, with a trailing slash or of the wrong type fails."""
    claims = {k: v for k, v in good_claims.items() if k != "iss"}
    if iss is not None:
        claims["iss"] = iss
    rejects(verifier, sign_real(es_key, at_header(es_key), claims))


@pytest.mark.parametrize(
    "aud", [None, "https://other.example", ["https://other.example"], "", [], 42, [42]]
)
def test_wrong_audience(
    verifier: TokenVerifier, es_key: SigningKey, good_claims: dict[str, Any], aud: Any
) -> None:
    """aud missing, another string, a list without us, empty, or a number fails."""
    claims = {k: v for k, v in good_claims.items() if k != "aud"}
    if aud is not None:
        claims["aud"] = aud
    rejects(verifier, sign_real(es_key, at_header(es_key), claims))


def test_expiry_boundary(
    verifier: TokenVerifier, es_key: SigningKey, good_claims: dict[str, Any]
) -> None:
    """exp = now - leeway - 1 and exp = now - leeway fail; exp = now - leeway + 1 passes."""
    for exp in (NOW - LEEWAY - 1, NOW - LEEWAY):
        claims = {**good_claims, "exp": exp, "iat": NOW - 600}
        rejects(verifier, sign_real(es_key, at_header(es_key), claims), "expired")
    claims = {**good_claims, "exp": NOW - LEEWAY + 1, "iat": NOW - 600}
    assert verifier.verify(sign_real(es_key, at_header(es_key), claims)).exp == NOW - LEEWAY + 1


def test_future_nbf(
    verifier: TokenVerifier, es_key: SigningKey, good_claims: dict[str, Any]
) -> None:
    """nbf beyond now + leeway fails; nbf at now + leeway passes."""
    late = {**good_claims, "nbf": NOW + LEEWAY + 5}
    rejects(verifier, sign_real(es_key, at_header(es_key), late), "invalid_claim:nbf")
    edge = {**good_claims, "nbf": NOW + LEEWAY}
    assert verifier.verify(sign_real(es_key, at_header(es_key), edge)).nbf == NOW + LEEWAY


def test_iat_in_the_future(
    verifier: TokenVerifier, es_key: SigningKey, good_claims: dict[str, Any]
) -> None:
    """iat more than leeway in the future fails."""
    claims = {**good_claims, "iat": NOW + 3600, "exp": NOW + 4000}
    rejects(verifier, sign_real(es_key, at_header(es_key), claims), "invalid_claim:iat")


@pytest.mark.parametrize(
    "name", ["iss", "sub", "aud", "exp", "iat", "jti", "sid", "scope", "roles"]
)
def test_each_required_claim_is_required(
    verifier: TokenVerifier, es_key: SigningKey, good_claims: dict[str, Any], name: str
) -> None:
    """Dropping any one required claim fails."""
    claims = {k: v for k, v in good_claims.items() if k != name}
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(sign_real(es_key, at_header(es_key), claims))
    assert caught.value.reason.endswith(name)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("exp", str(NOW + 600)),
        ("exp", float(NOW + 600)),
        ("exp", True),
        ("exp", float("1e400")),
        ("iat", "now"),
        ("nbf", "later"),
        ("sub", 7),
        ("sub", ""),
        ("jti", None),
        ("sid", 5),
        ("sid", ""),
        ("scope", ["read"]),
        ("roles", "admin"),
        ("roles", [1]),
        ("client_id", 3),
    ],
)
def test_claims_of_the_wrong_type(
    verifier: TokenVerifier,
    es_key: SigningKey,
    good_claims: dict[str, Any],
    name: str,
    value: Any,
) -> None:
    """Claims with the wrong JSON type (or empty where a value is needed) fail."""
    claims = {**good_claims, name: value}
    rejects(verifier, sign_real(es_key, at_header(es_key), claims))


def test_hostile_claim_values_are_just_data(
    verifier: TokenVerifier, es_key: SigningKey, good_claims: dict[str, Any]
) -> None:
    """sub/jti holding SQL, paths or newlines are returned verbatim, never interpreted."""
    claims = {**good_claims, "sub": "' OR 1=1--", "jti": "../../x\r\n"}
    verified = verifier.verify(sign_real(es_key, at_header(es_key), claims))
    assert (verified.sub, verified.jti) == ("' OR 1=1--", "../../x\r\n")


# --- shape ------------------------------------------------------------------------


def genuine(es_key: SigningKey, claims: dict[str, Any]) -> str:
    return sign_real(es_key, at_header(es_key), claims)


@pytest.mark.parametrize(
    "shape",
    [
        lambda t: t + ".AAAA.AAAA",  # 5 parts, JWE-shaped
        lambda t: t.rpartition(".")[0],  # 2 parts
        lambda t: t + ".AAAA",  # 4 parts
        lambda t: t.replace(".", ""),  # 1 part
        lambda t: t.replace(".", "..", 1),  # empty segment
        lambda t: "." + t,  # leading dot
        lambda t: t + "\n",  # trailing newline
        lambda t: " " + t,  # leading space
        lambda t: t.replace("-", "+").replace("_", "/") + "+/",  # standard alphabet
        lambda t: t + "=",  # padding
        lambda t: t[:-1] + "\u00e9",  # non-ASCII
        lambda t: t[:-2] + "A",  # non-canonical length of the signature segment
    ],
)
def test_wrong_shapes(
    verifier: TokenVerifier,
    es_key: SigningKey,
    good_claims: dict[str, Any],
    shape: Callable[[str], str],
) -> None:
    """Anything but three non-empty base64url segments fails."""
    rejects(verifier, shape(genuine(es_key, good_claims)))


def test_five_part_jwe(verifier: TokenVerifier, es_key: SigningKey) -> None:
    """A JWE compact serialization is not an access token."""
    header = seg({"alg": "dir", "enc": "A256GCM", "kid": es_key.kid, "typ": "at+jwt"})
    rejects(verifier, f"{header}..{b64(bytes(12))}.{b64(b'ciphertext')}.{b64(bytes(16))}")


@pytest.mark.parametrize(
    "header",
    [b"[]", b"null", b"123", b'"at+jwt"', b"{", b"\xff\xfe{}", b'{"alg":NaN}', b""],
)
def test_header_that_is_not_a_json_object(verifier: TokenVerifier, header: bytes) -> None:
    """A header that is not a UTF-8 JSON object fails as malformed."""
    rejects(verifier, f"{b64(header) or 'AA'}.{seg({'sub': 'x'})}.{b64(bytes(64))}", "malformed")


@pytest.mark.parametrize("payload", [b"[]", b"null", b"1", b"not json", b'{"exp": Infinity}'])
def test_payload_that_is_not_a_json_object(
    verifier: TokenVerifier, es_key: SigningKey, payload: bytes
) -> None:
    """A genuinely signed payload that is not a JSON object fails as malformed."""
    rejects(verifier, sign_real(es_key, at_header(es_key), payload), "malformed")


def test_deeply_nested_payload(verifier: TokenVerifier, es_key: SigningKey) -> None:
    """A signed payload nested thousands deep fails cleanly (no RecursionError leaks)."""
    payload = b'{"a":' + b"[" * 3000 + b"]" * 3000 + b"}"
    rejects(verifier, sign_real(es_key, at_header(es_key), payload))


def test_64kb_header(
    verifier: TokenVerifier, es_key: SigningKey, good_claims: dict[str, Any]
) -> None:
    """A 64 KB header is refused on size, before any parsing."""
    header = at_header(es_key, pad="x" * 65536)
    rejects(verifier, f"{seg(header)}.{seg(good_claims)}.{b64(bytes(64))}", "too_large")
    just_over = "A" * (MAX_TOKEN_LENGTH + 1)
    rejects(verifier, just_over, "too_large")


@pytest.mark.parametrize(
    "token",
    [
        # Random values get fixed ids: pytest-xdist workers must collect the same names.
        pytest.param(secrets.token_urlsafe(32), id="refresh-token-shaped"),
        pytest.param("rt_" + secrets.token_urlsafe(32), id="prefixed-refresh-token"),
        pytest.param(secrets.token_hex(32), id="hex"),
        "",
        ".",
        "..",
        "Bearer " + "a.b.c",
        "null",
    ],
)
def test_opaque_and_empty_strings(verifier: TokenVerifier, token: str) -> None:
    """Refresh-token-shaped and other opaque strings fail as malformed."""
    rejects(verifier, token, "malformed")


@pytest.mark.parametrize("value", [None, b"a.b.c", 12, ["a.b.c"]])
def test_non_string_input(verifier: TokenVerifier, value: Any) -> None:
    """Anything that is not a str fails with InvalidToken, not a TypeError."""
    rejects(verifier, value, "not_a_string")


def test_refresh_style_jwt_is_not_an_access_token(
    verifier: TokenVerifier, es_key: SigningKey, good_claims: dict[str, Any]
) -> None:
    """A JWT signed by our key but typed as something else (refresh, ID token) fails."""
    for typ in ("rt+jwt", "JWT", "id_token+jwt"):
        header = {"typ": typ, "alg": "ES256", "kid": es_key.kid}
        rejects(verifier, sign_real(es_key, header, good_claims), "typ")


def test_random_mutations_only_ever_raise_invalid_token(
    verifier: TokenVerifier, es_key: SigningKey, good_claims: dict[str, Any]
) -> None:
    """2,000 random byte mutations of a genuine token give InvalidToken or (for
    harmless ones) the genuine claims, never another exception."""
    token = genuine(es_key, good_claims)
    alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \x00{}"'
    rng = random.Random(20240404)
    accepted = 0
    for _ in range(2000):
        chars = list(token)
        for _ in range(rng.randint(1, 4)):
            position = rng.randrange(len(chars))
            operation = rng.random()
            if operation < 0.6:
                chars[position] = rng.choice(alphabet)
            elif operation < 0.8:
                del chars[position]
            else:
                chars.insert(position, rng.choice(alphabet))
        mutated = "".join(chars)
        try:
            claims = verifier.verify(mutated)
        except InvalidToken:
            continue
        assert mutated == token
        assert claims.sub == good_claims["sub"]
        accepted += 1
    assert accepted <= 2000
