"""Access tokens: issue, verify, rotate, publish, cache."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import import_key

from keyturn.clock import FrozenClock
from keyturn.errors import ConfigurationError, InvalidToken
from keyturn.keys.records import ALGORITHMS, SigningKey, generate_key, load_private_key
from keyturn.keys.ring import KeyRing
from keyturn.settings import Settings, SigningAlgorithm
from keyturn.tokens.access import TokenIssuer, TokenVerifier
from keyturn.tokens.cache import VerifiedTokenCache
from keyturn.tokens.claims import AccessTokenClaims

START = 1_800_000_000.0
ISSUER = "https://auth.example.com"
AUDIENCE = "https://api.example.com"


@pytest.fixture(scope="module")
def keys() -> dict[SigningAlgorithm, SigningKey]:
    """One key per algorithm, shared by the module (RSA generation is slow)."""
    return {alg: generate_key(alg, now=START - 60) for alg in ALGORITHMS}


@pytest.fixture
def settings() -> Settings:
    """Explicit issuer and audience, 900 s tokens, 5 s leeway."""
    return Settings(issuer=ISSUER, audience=AUDIENCE, access_token_ttl=900, clock_leeway=5)


@pytest.fixture
def clock() -> FrozenClock:
    """A clock that moves only when told to."""
    return FrozenClock(START)


def make_ring(settings: Settings, clock: FrozenClock, *records: SigningKey) -> KeyRing:
    return KeyRing.from_settings(records, settings, now=clock.now())


def b64json(segment: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


# --- round trip -------------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_round_trip_per_algorithm(
    keys: dict[SigningAlgorithm, SigningKey], settings: Settings, clock: FrozenClock, alg: str
) -> None:
    """A token issued with each algorithm verifies to the same claims."""
    keyring = make_ring(settings, clock, keys[alg])  # type: ignore[index]
    token, claims = TokenIssuer(keyring, settings, clock).issue(
        "user-1", sid="sess-1", roles=["admin"], scope="read write", client_id="cli"
    )
    verified = TokenVerifier(keyring, settings, clock).verify(token)
    assert verified == claims
    assert verified.scopes == ("read", "write")


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_header_is_exactly_typ_alg_kid(
    keys: dict[SigningAlgorithm, SigningKey], settings: Settings, clock: FrozenClock, alg: str
) -> None:
    """The header is {"typ":"at+jwt","alg":...,"kid":...}, in that order, nothing else."""
    key = keys[alg]  # type: ignore[index]
    token, _ = TokenIssuer(make_ring(settings, clock, key), settings, clock).issue("u", sid="s")
    header = b64json(token.split(".")[0])
    assert list(header.items()) == [("typ", "at+jwt"), ("alg", alg), ("kid", key.kid)]


def test_claims_follow_rfc9068_and_the_spec(
    keys: dict[SigningAlgorithm, SigningKey], settings: Settings, clock: FrozenClock
) -> None:
    """The payload carries iss, sub, aud, exp, iat, jti, sid, scope, roles (+client_id)."""
    issuer = TokenIssuer(make_ring(settings, clock, keys["ES256"]), settings, clock)
    token, claims = issuer.issue("user-1", sid="fam-1", roles=("a", "b"), ttl=60)
    payload = b64json(token.split(".")[1])
    assert payload == {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": AUDIENCE,
        "exp": int(START) + 60,
        "iat": int(START),
        "jti": claims.jti,
        "sid": "fam-1",
        "scope": "",
        "roles": ["a", "b"],
    }
    assert len(base64.urlsafe_b64decode(claims.jti + "==")) == 16
    _, other = issuer.issue("user-1", sid="fam-1", client_id="spa")
    assert other.jti != claims.jti
    assert other.client_id == "spa"
    assert other.exp == int(START) + settings.access_token_ttl


def test_default_audience_is_the_issuer(
    keys: dict[SigningAlgorithm, SigningKey], clock: FrozenClock
) -> None:
    """Without --audience, tokens are for the issuer itself and verify as such."""
    settings = Settings(issuer=ISSUER)
    keyring = make_ring(settings, clock, keys["EdDSA"])
    token, claims = TokenIssuer(keyring, settings, clock).issue("u", sid="s")
    assert claims.aud == ISSUER
    assert TokenVerifier(keyring, settings, clock).verify(token).aud == ISSUER


@pytest.mark.parametrize("ttl", [0, -1, 901])
def test_ttl_cannot_exceed_the_setting(
    keys: dict[SigningAlgorithm, SigningKey], settings: Settings, clock: FrozenClock, ttl: int
) -> None:
    """A ttl outside 1..access_token_ttl is refused (key retirement assumes that bound)."""
    issuer = TokenIssuer(make_ring(settings, clock, keys["ES256"]), settings, clock)
    with pytest.raises(ValueError, match="ttl"):
        issuer.issue("u", sid="s", ttl=ttl)


def test_issuing_without_an_active_key_fails(
    keys: dict[SigningAlgorithm, SigningKey], settings: Settings, clock: FrozenClock
) -> None:
    """A ring of retired keys cannot issue tokens."""
    keyring = make_ring(settings, clock, keys["ES256"].retire(START))
    with pytest.raises(ConfigurationError):
        TokenIssuer(keyring, settings, clock).issue("u", sid="s")


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")  # joserfc prefers RFC 9864 names
@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "RS256"])
def test_other_libraries_verify_our_tokens_from_the_jwks(
    keys: dict[SigningAlgorithm, SigningKey], settings: Settings, clock: FrozenClock, alg: str
) -> None:
    """joserfc and PyJWT, given only the published JWK, verify our tokens."""
    keyring = make_ring(settings, clock, keys[alg])  # type: ignore[index]
    token, claims = TokenIssuer(keyring, settings, clock).issue("u", sid="s")
    (jwk,) = keyring.jwks()["keys"]
    public = import_key(dict[str, str | list[str]](jwk))
    decoded = jws.deserialize_compact(token, public, algorithms=[alg])
    assert json.loads(decoded.payload) == claims.to_dict()
    pyjwt = pytest.importorskip("jwt")
    key = pyjwt.PyJWK(jwk).key
    options = {"verify_exp": False, "verify_iat": False}
    payload = pyjwt.decode(
        token, key, algorithms=[alg], audience=AUDIENCE, issuer=ISSUER, options=options
    )
    assert payload == claims.to_dict()


# --- typ and aud variants that must pass -------------------------------------------


def _sign(key: SigningKey, header: dict[str, Any], payload: dict[str, Any]) -> str:
    """Sign arbitrary header/payload with a real ring key, as a test oracle."""
    from joserfc.util import urlsafe_b64encode

    from keyturn.keys.records import jws_algorithm

    def seg(value: dict[str, Any]) -> str:
        return urlsafe_b64encode(json.dumps(value).encode()).decode()

    signing_input = f"{seg(header)}.{seg(payload)}"
    signature = jws_algorithm(key.alg).sign(signing_input.encode(), load_private_key(key))
    return f"{signing_input}.{urlsafe_b64encode(signature).decode()}"


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"])
def test_typ_is_compared_case_insensitively(
    keys: dict[SigningAlgorithm, SigningKey], settings: Settings, clock: FrozenClock, typ: str
) -> None:
    """RFC 9068 typ values are media types: any casing, with or without application/."""
    key = keys["ES256"]
    _, claims = TokenIssuer(make_ring(settings, clock, key), settings, clock).issue("u", sid="s")
    token = _sign(key, {"typ": typ, "alg": "ES256", "kid": key.kid}, claims.to_dict())
    verifier = TokenVerifier(make_ring(settings, clock, key), settings, clock)
    assert verifier.verify(token) == claims


def test_audience_list_containing_us_is_accepted(
    keys: dict[SigningAlgorithm, SigningKey], settings: Settings, clock: FrozenClock
) -> None:
    """aud may be a list, as long as it contains our audience."""
    key = keys["ES256"]
    _, claims = TokenIssuer(make_ring(settings, clock, key), settings, clock).issue("u", sid="s")
    payload = {**claims.to_dict(), "aud": ["https://other.example", AUDIENCE]}
    token = _sign(key, {"typ": "at+jwt", "alg": "ES256", "kid": key.kid}, payload)
    verified = TokenVerifier(make_ring(settings, clock, key), settings, clock).verify(token)
    assert verified.aud == ("https://other.example", AUDIENCE)


# --- rotation ---------------------------------------------------------------------


def test_rotation_signs_with_the_new_key_at_once_and_old_tokens_live_on(
    keys: dict[SigningAlgorithm, SigningKey], settings: Settings, clock: FrozenClock
) -> None:
    """After rotation new tokens carry the new kid and old tokens still verify."""
    old, new = keys["EdDSA"], generate_key("ES256", now=START)
    before = make_ring(settings, clock, old)
    old_token, _ = TokenIssuer(before, settings, clock).issue("u", sid="s")

    clock.advance(10)
    after = make_ring(settings, clock, old.retire(clock.now()), new)
    issuer = TokenIssuer(before, settings, clock)
    issuer.use_keyring(after)
    new_token, _ = issuer.issue("u", sid="s")
    assert b64json(new_token.split(".")[0])["kid"] == new.kid
    verifier = TokenVerifier(after, settings, clock)
    assert verifier.verify(old_token).sub == "u"
    assert verifier.verify(new_token).sub == "u"
    assert {jwk["kid"] for jwk in after.jwks()["keys"]} == {old.kid, new.kid}


def test_retired_key_stops_verifying_after_ttl_plus_leeway(
    keys: dict[SigningAlgorithm, SigningKey], settings: Settings, clock: FrozenClock
) -> None:
    """A token signed by a retired key is refused once ttl + leeway have passed since
    retirement, even if its own exp says otherwise, and the key leaves the JWKS."""
    old, new = keys["EdDSA"], keys["ES256"]
    retired_at = clock.now()
    ring = make_ring(settings, clock, old.retire(retired_at), new)
    verifier = TokenVerifier(ring, settings, clock, cache_entries=0)
    stale_issuer = TokenIssuer(make_ring(settings, clock, old), settings, clock)

    clock.advance(settings.access_token_ttl + settings.clock_leeway - 1)
    late_token, _ = stale_issuer.issue("u", sid="s")  # a fresh exp, signed by the old key
    assert verifier.verify(late_token).sub == "u"

    clock.advance(1)
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(late_token)
    assert caught.value.reason == "unknown_kid"
    rebuilt = make_ring(settings, clock, old.retire(retired_at), new)
    assert [jwk["kid"] for jwk in rebuilt.jwks()["keys"]] == [new.kid]


def test_hmac_tokens_verify_but_the_key_is_never_published(
    keys: dict[SigningAlgorithm, SigningKey], settings: Settings, clock: FrozenClock
) -> None:
    """An HS256 ring verifies its tokens and publishes an empty JWKS."""
    ring = make_ring(settings, clock, keys["HS256"])
    token, _ = TokenIssuer(ring, settings, clock).issue("u", sid="s")
    assert TokenVerifier(ring, settings, clock).verify(token).sub == "u"
    assert ring.jwks() == {"keys": []}


# --- the cache --------------------------------------------------------------------


def test_cache_hit_returns_the_same_claims(
    keys: dict[SigningAlgorithm, SigningKey], settings: Settings, clock: FrozenClock
) -> None:
    """A second verify of one token is served from the cache with identical claims."""
    ring = make_ring(settings, clock, keys["ES256"])
    token, claims = TokenIssuer(ring, settings, clock).issue("u", sid="s")
    verifier = TokenVerifier(ring, settings, clock)
    first = verifier.verify(token)
    assert verifier.cache is not None and len(verifier.cache) == 1
    assert verifier.verify(token) is first
    assert first == claims


def test_cache_drops_the_entry_at_exp(
    keys: dict[SigningAlgorithm, SigningKey], settings: Settings, clock: FrozenClock
) -> None:
    """At exp the cache forgets the token; verification then falls back to the full
    check (valid inside the leeway, refused after it)."""
    ring = make_ring(settings, clock, keys["ES256"])
    token, claims = TokenIssuer(ring, settings, clock).issue("u", sid="s", ttl=60)
    verifier = TokenVerifier(ring, settings, clock)
    verifier.verify(token)
    cache = verifier.cache
    assert cache is not None
    clock.advance(59)
    assert cache.get(token, clock.now()) == claims
    clock.advance(1)
    assert cache.get(token, clock.now()) is None
    assert len(cache) == 0
    assert verifier.verify(token) == claims  # inside the leeway, re-verified, not cached
    assert len(cache) == 0
    clock.advance(settings.clock_leeway)
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(token)
    assert caught.value.reason == "expired"


def test_cache_only_stores_successes(
    keys: dict[SigningAlgorithm, SigningKey], settings: Settings, clock: FrozenClock
) -> None:
    """Failed verifications leave nothing in the cache."""
    verifier = TokenVerifier(make_ring(settings, clock, keys["ES256"]), settings, clock)
    for junk in ("a.b.c", "x" * 50, "eyJ.eyJ.sig"):
        with pytest.raises(InvalidToken):
            verifier.verify(junk)
    assert verifier.cache is not None and len(verifier.cache) == 0


def test_cache_bound_evicts_the_least_recently_used(
    keys: dict[SigningAlgorithm, SigningKey], settings: Settings, clock: FrozenClock
) -> None:
    """With room for two, a third token evicts the least recently used one."""
    ring = make_ring(settings, clock, keys["HS256"])
    issuer = TokenIssuer(ring, settings, clock)
    verifier = TokenVerifier(ring, settings, clock, cache_entries=2)
    cache = verifier.cache
    assert cache is not None
    (a, _), (b, _), (c, _) = (issuer.issue(f"u{i}", sid="s") for i in range(3))
    verifier.verify(a)
    verifier.verify(b)
    verifier.verify(a)  # a is now the most recently used
    verifier.verify(c)
    assert len(cache) == 2
    assert cache.get(b, clock.now()) is None
    assert cache.get(a, clock.now()) is not None
    assert cache.get(c, clock.now()) is not None


def test_cache_can_be_disabled(
    keys: dict[SigningAlgorithm, SigningKey], settings: Settings, clock: FrozenClock
) -> None:
    """cache_entries=0 verifies every time and keeps no cache."""
    ring = make_ring(settings, clock, keys["ES256"])
    token, claims = TokenIssuer(ring, settings, clock).issue("u", sid="s")
    verifier = TokenVerifier(ring, settings, clock, cache_entries=0)
    assert verifier.cache is None
    assert verifier.verify(token) == claims == verifier.verify(token)


def test_new_keyring_clears_the_cache(
    keys: dict[SigningAlgorithm, SigningKey], settings: Settings, clock: FrozenClock
) -> None:
    """Swapping the ring forgets cached tokens, so a withdrawn key takes effect at once."""
    ring = make_ring(settings, clock, keys["ES256"])
    token, _ = TokenIssuer(ring, settings, clock).issue("u", sid="s")
    verifier = TokenVerifier(ring, settings, clock)
    verifier.verify(token)
    verifier.use_keyring(make_ring(settings, clock, keys["EdDSA"]))
    with pytest.raises(InvalidToken):
        verifier.verify(token)


def test_purge_drops_expired_entries() -> None:
    """purge_expired removes exactly the entries whose exp has passed."""
    cache = VerifiedTokenCache(10)
    for i, exp in enumerate((100, 200, 300)):
        cache.put(f"t{i}", AccessTokenClaims("i", "s", "a", exp, 0, "j", "sid"))
    assert cache.purge_expired(200) == 2
    assert len(cache) == 1


def test_cache_needs_room_for_one_entry() -> None:
    """A cache bound below one is a programming error."""
    with pytest.raises(ValueError, match="at least 1"):
        VerifiedTokenCache(0)


# --- a client's own token (client_credentials, #12) ---------------------------------


def test_a_client_token_has_no_sid_and_verifies(
    keys: dict[SigningAlgorithm, SigningKey], settings: Settings, clock: FrozenClock
) -> None:
    """A token whose sub is its client_id may leave sid out (client_credentials);
    it verifies as a client token."""
    key = keys["ES256"]
    token, claims = TokenIssuer(make_ring(settings, clock, key), settings, clock).issue(
        "svc", sid="", client_id="svc"
    )
    assert "sid" not in b64json(token.split(".")[1])
    verified = TokenVerifier(make_ring(settings, clock, key), settings, clock).verify(token)
    assert verified == claims and verified.for_client


@pytest.mark.parametrize("client_id", [None, "other-client"])
def test_a_user_token_without_sid_is_refused(
    keys: dict[SigningAlgorithm, SigningKey],
    settings: Settings,
    clock: FrozenClock,
    client_id: str | None,
) -> None:
    """Without sid, a token is refused unless its sub is its client_id: a user's
    token can never pass as a client's by dropping the claim."""
    key = keys["ES256"]
    _, claims = TokenIssuer(make_ring(settings, clock, key), settings, clock).issue(
        "user-1", sid="fam-1", client_id=client_id
    )
    payload = {name: value for name, value in claims.to_dict().items() if name != "sid"}
    token = _sign(key, {"typ": "at+jwt", "alg": "ES256", "kid": key.kid}, payload)
    with pytest.raises(InvalidToken) as caught:
        TokenVerifier(make_ring(settings, clock, key), settings, clock).verify(token)
    assert caught.value.reason == "missing_claim:sid"
