"""examples/reports/logout_token.py in process: what the live tests cannot steer,
the key source (refetches for an unknown kid are rate-limited, an outage is not a
refusal) and the algorithm a key pins."""

from __future__ import annotations

import json
from typing import Any

import pytest
from examples.reports.logout_token import (
    LOGOUT_EVENT,
    REFETCH_INTERVAL,
    KeysUnavailable,
    LogoutTokenError,
    LogoutTokenVerifier,
)
from joserfc import jws
from joserfc.jwk import ECKey, Key, RSAKey

ISSUER = "https://issuer.example"
CLIENT = "reports"
NOW = 1_800_000_000


class Keys:
    """A JWK Set source as Authlib's is: a cached copy, fetched again only when
    forced; it counts the calls (``True`` for the forced ones)."""

    def __init__(self, *keys: Key, alg: str = "RS256") -> None:
        self.published = [{**key.as_dict(private=False), "alg": alg} for key in keys]
        self.cached: dict[str, Any] | None = None
        self.fetches: list[bool] = []
        self.down = False

    async def __call__(self, force: bool) -> dict[str, Any]:
        self.fetches.append(force)
        if self.down:
            raise OSError("connection refused")
        if force or self.cached is None:
            self.cached = {"keys": list(self.published)}
        return self.cached


class Clock:
    def __init__(self) -> None:
        self.now = float(NOW)

    def __call__(self) -> float:
        return self.now


def logout_token(key: Key, kid: str, alg: str = "RS256", **extra: Any) -> str:
    claims = {
        "iss": ISSUER,
        "aud": CLIENT,
        "iat": NOW,
        "exp": NOW + 120,
        "jti": f"jti-{kid}-{extra.pop('jti', 1)}",
        "sub": "user-1",
        "sid": "session-1",
        "events": {LOGOUT_EVENT: {}},
        **extra,
    }
    header = {"alg": alg, "kid": kid, "typ": "logout+jwt"}
    return jws.serialize_compact(header, json.dumps(claims).encode(), key)


@pytest.fixture
def rsa() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "k1"})


def verifier(keys: Keys, clock: Clock) -> LogoutTokenVerifier:
    return LogoutTokenVerifier(issuer=ISSUER, client_id=CLIENT, jwks=keys, clock=clock)


async def test_a_valid_token_names_the_session(rsa: RSAKey) -> None:
    keys, clock = Keys(rsa), Clock()
    verified = await verifier(keys, clock).verify(logout_token(rsa, "k1"))
    assert (verified.sub, verified.sid, verified.exp) == ("user-1", "session-1", NOW + 120)
    assert keys.fetches == [False]  # the cached set was enough


async def test_an_unknown_kid_refetches_the_set_at_most_every_interval(rsa: RSAKey) -> None:
    """A rotated key is found by one fresh fetch; a stream of forged kids costs the
    issuer one fetch per interval, not one per token."""
    keys, clock = Keys(rsa), Clock()
    check = verifier(keys, clock)
    stranger = RSAKey.generate_key(2048)
    for attempt in range(3):
        with pytest.raises(LogoutTokenError, match="not signed by a key of the issuer"):
            await check.verify(logout_token(stranger, f"forged-{attempt}"))
    assert keys.fetches.count(True) == 1
    clock.now += REFETCH_INTERVAL
    rotated = RSAKey.generate_key(2048, parameters={"kid": "k2"})
    keys.published.append({**rotated.as_dict(private=False), "alg": "RS256"})
    verified = await check.verify(logout_token(rotated, "k2"))  # found by the refetch
    assert verified.sid == "session-1" and keys.fetches.count(True) == 2


async def test_the_key_pins_the_algorithm(rsa: RSAKey) -> None:
    """A token whose header names another algorithm than its key's JWK is refused
    before any signature check (no algorithm confusion)."""
    ec = ECKey.generate_key("P-256", parameters={"kid": "e1"})
    keys = Keys(ec, alg="ES256")
    check = verifier(keys, Clock())
    with pytest.raises(LogoutTokenError, match="not its key's"):
        await check.verify(logout_token(rsa, "e1", alg="RS256"))
    assert (await check.verify(logout_token(ec, "e1", alg="ES256"))).sub == "user-1"


async def test_an_unreachable_issuer_is_not_a_refusal(rsa: RSAKey) -> None:
    """No keys: KeysUnavailable (the endpoint answers 503 and keyturn retries),
    never a LogoutTokenError that would make keyturn give up."""
    keys = Keys(rsa)
    keys.down = True
    with pytest.raises(KeysUnavailable):
        await verifier(keys, Clock()).verify(logout_token(rsa, "k1"))
