"""The OIDC core on its own (no HTTP): ID token claims and at_hash, the
id_token_hint check of RP-initiated logout, and the back-channel handler's
delivery outcomes, with an in-memory key ring and a frozen clock."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

import httpx
import pytest
from joserfc import jws

from keyturn.audit import AuditLog
from keyturn.clock import FrozenClock
from keyturn.errors import (
    InvalidRequest,
    InvalidToken,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from keyturn.keys.records import generate_key
from keyturn.keys.ring import KeyRing
from keyturn.oidc.backchannel import LOGOUT_EVENT, LogoutTokenDelivery
from keyturn.oidc.id_token import IdTokenClaims, at_hash, sign_id_token
from keyturn.oidc.logout import check_logout_request, read_id_token_hint
from keyturn.outbox.sealing import AesGcmSealer
from keyturn.outbox.store import JobState, OutboxJob
from keyturn.settings import Settings

ISSUER = "https://id.example"
NOW = 1_800_000_000.0


@dataclass(frozen=True)
class Rp:
    id: str = "rp"
    name: str = "RP"
    post_logout_redirect_uris: tuple[str, ...] = ("https://rp.example/bye",)
    backchannel_logout_uri: str | None = "https://rp.example/bc"
    id_token_alg: str | None = None


@pytest.fixture(scope="module")
def ring() -> KeyRing:
    """An access-token key (ES256) beside the ID-token keys (RS256, EdDSA)."""
    keys = [generate_key(alg, now=NOW) for alg in ("ES256", "RS256", "EdDSA")]
    return KeyRing(keys, now=NOW, access_token_ttl=900, clock_leeway=5, signing_alg="ES256")


def claims_of(token: str) -> tuple[dict[str, object], dict[str, object]]:
    head, body, _ = token.split(".")
    pad = lambda part: base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))  # noqa: E731
    return json.loads(pad(head)), json.loads(pad(body))


def id_token(ring: KeyRing, alg: str = "RS256", **overrides: object) -> str:
    fields: dict[str, object] = {
        "issuer": ISSUER,
        "subject": "user-1",
        "client_id": "rp",
        "auth_time": NOW - 30,
        "session_handle": "sess-1",
        "scopes": ("openid", "email"),
        "nonce": "n1",
        "amr": ("pwd", "otp", "mfa"),
        "email": "a@example.com",
        "email_verified": True,
    }
    fields.update(overrides)
    claims = IdTokenClaims(**fields)  # type: ignore[arg-type]
    return sign_id_token(claims, ring, alg=alg, now=NOW, ttl=900, access_token="at.x.y")


def test_at_hash_is_the_left_half_of_the_algorithms_hash() -> None:
    """RS256/ES256 use SHA-256, EdDSA SHA-512 (OIDC Core 3.1.3.6)."""
    sha256 = hashlib.sha256(b"token").digest()[:16]
    sha512 = hashlib.sha512(b"token").digest()[:32]
    assert at_hash("token", "RS256") == base64.urlsafe_b64encode(sha256).rstrip(b"=").decode()
    assert at_hash("token", "EdDSA") == base64.urlsafe_b64encode(sha512).rstrip(b"=").decode()


def test_id_token_carries_every_claim_and_acr_from_amr(ring: KeyRing) -> None:
    """Claims as OIDC Core section 2 lists them; amr gives acr; typ is JWT."""
    header, claims = claims_of(id_token(ring))
    assert header["typ"] == "JWT" and header["alg"] == "RS256"
    assert header["kid"] == ring.signer("RS256")[0].kid != ring.signing_key.kid
    assert claims["iss"] == ISSUER and claims["aud"] == "rp" and claims["sub"] == "user-1"
    assert (claims["iat"], claims["exp"], claims["auth_time"]) == (NOW, NOW + 900, NOW - 30)
    assert claims["nonce"] == "n1" and claims["sid"] == "sess-1"
    assert claims["at_hash"] == at_hash("at.x.y", "RS256")
    assert claims["amr"] == ["pwd", "otp", "mfa"] and claims["acr"] == "urn:keyturn:acr:mfa"
    assert (claims["email"], claims["email_verified"]) == ("a@example.com", True)


def test_unknown_facts_are_left_out_not_guessed(ring: KeyRing) -> None:
    """No nonce sent, no amr recorded, no email scope, unknown verification: no claims."""
    _, claims = claims_of(id_token(ring, nonce=None, amr=(), scopes=("openid",)))
    assert not {"nonce", "amr", "acr", "email", "email_verified"} & set(claims)
    _, claims = claims_of(id_token(ring, email_verified=None))
    assert "email" in claims and "email_verified" not in claims


def test_hint_is_verified_with_the_keys_own_algorithm(ring: KeyRing) -> None:
    """A valid hint (RS256 or EdDSA) reads back; a tampered one, another issuer's,
    or an access-token-typed JWT is refused."""
    for alg in ("RS256", "EdDSA"):
        hint = read_id_token_hint(id_token(ring, alg), ring, issuer=ISSUER)
        assert (hint.subject, hint.client_id, hint.session_handle) == ("user-1", "rp", "sess-1")
    token = id_token(ring)
    head, body, signature = token.split(".")
    with pytest.raises(InvalidToken):
        read_id_token_hint(f"{head}.{body}.{signature[::-1]}", ring, issuer=ISSUER)
    with pytest.raises(InvalidToken):
        read_id_token_hint(token, ring, issuer="https://other.example")
    record, key, _ = ring.signer("RS256")
    header = {"typ": "at+jwt", "alg": "RS256", "kid": record.kid}
    payload = json.dumps({"iss": ISSUER, "sub": "u", "aud": "rp"}).encode()
    at = jws.serialize_compact(header, payload, key, algorithms=["RS256"])
    with pytest.raises(InvalidToken):
        read_id_token_hint(at, ring, issuer=ISSUER)
    with pytest.raises(InvalidToken):
        read_id_token_hint("garbage", ring, issuer=ISSUER)


async def test_logout_request_allows_only_registered_exact_uris(ring: KeyRing) -> None:
    """A registered URI gets state appended; another URI, a client_id that
    disagrees with the hint, or a URI without a client is refused."""

    async def lookup(client_id: str) -> Rp | None:
        return Rp() if client_id == "rp" else None

    hint = id_token(ring)
    ok = await check_logout_request(
        {"id_token_hint": hint, "post_logout_redirect_uri": "https://rp.example/bye", "state": "s"},
        ring=ring,
        issuer=ISSUER,
        lookup_client=lookup,
    )
    assert ok.redirect_uri == "https://rp.example/bye?state=s" and ok.hint is not None
    for params in (
        {"id_token_hint": hint, "post_logout_redirect_uri": "https://rp.example/bye2"},
        {"id_token_hint": hint, "client_id": "other"},
        {"post_logout_redirect_uri": "https://rp.example/bye"},
    ):
        with pytest.raises(InvalidRequest):
            await check_logout_request(params, ring=ring, issuer=ISSUER, lookup_client=lookup)


def job(sealer: AesGcmSealer, attempts: int = 1) -> OutboxJob:
    body = {"v": 1, "client_id": "rp", "sub": "user-1", "sid": "sess-1"}
    sealed = sealer.seal(json.dumps(body).encode())
    return OutboxJob("j1", "backchannel_logout", sealed, JobState.PENDING, attempts, NOW, NOW, NOW)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, None), (204, None), (503, RetryableDeliveryError), (400, PermanentDeliveryError)],
)
async def test_delivery_outcomes_follow_the_rps_answer(
    ring: KeyRing, status: int, outcome: type[Exception] | None
) -> None:
    """200/204 delivered; 5xx retried; other 4xx permanent. The POST is a form
    with a logout+jwt whose events name back-channel logout and has no nonce."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status)

    sealer = AesGcmSealer(b"k" * 32)

    async def lookup(client_id: str) -> Rp | None:
        return Rp()

    async def ensure(alg: str) -> None:
        return None

    delivery = LogoutTokenDelivery(
        ring=lambda: ring,
        ensure_key=ensure,
        clients=lookup,
        sealer=sealer,
        issuer=ISSUER,
        audit=AuditLog(Settings(), FrozenClock(NOW)),
        clock=FrozenClock(NOW),
        http=httpx.AsyncClient(transport=httpx.MockTransport(answer)),
    )
    if outcome is None:
        await delivery(job(sealer))
    else:
        with pytest.raises(outcome):
            await delivery(job(sealer))
    [request] = seen
    token = dict(httpx.QueryParams(request.content.decode()))["logout_token"]
    header, claims = claims_of(token)
    assert header["typ"] == "logout+jwt" and header["alg"] == "RS256"
    assert claims["events"] == {LOGOUT_EVENT: {}} and "nonce" not in claims
    assert (claims["aud"], claims["sub"], claims["sid"]) == ("rp", "user-1", "sess-1")
    with pytest.raises(PermanentDeliveryError):
        await delivery(OutboxJob("j2", "x", b"junk", JobState.PENDING, 1, NOW, NOW, NOW))
