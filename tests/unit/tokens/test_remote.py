"""keyturn.verify.RemoteVerifier and its FastAPI dependency, against a fake issuer.

The issuer is an ``httpx.MockTransport`` serving metadata, a JWKS and an
introspection endpoint from a real key ring, so every request the verifier makes is
counted and no network or database is involved.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from keyturn.clock import FrozenClock
from keyturn.errors import ConfigurationError, InvalidToken
from keyturn.keys.records import SigningKey, generate_key
from keyturn.keys.ring import KeyRing
from keyturn.settings import Settings
from keyturn.tokens.access import TokenIssuer
from keyturn.tokens.claims import AccessTokenClaims
from keyturn.verify import IssuerUnavailable, RemoteVerifier
from keyturn.web.verify_dependency import bearer_claims, install_error_handler

ISSUER = "https://auth.example.test"
AUDIENCE = "https://api.example.test"
CLIENT = ("svc", "s3cret")


class FakeIssuer:
    """An issuer whose keys, metadata and introspection answers tests can change."""

    def __init__(self, clock: FrozenClock) -> None:
        self.clock = clock
        self.settings = Settings.model_construct(
            issuer=ISSUER, audience=AUDIENCE, access_token_ttl=900, clock_leeway=5
        )
        self.keys: list[SigningKey] = [generate_key("ES256", now=clock.now())]
        self.metadata_issuer = ISSUER
        self.revoked: set[str] = set()
        self.hits: Counter[str] = Counter()
        self.down = False
        self.transport = httpx.MockTransport(self.handle)

    def ring(self) -> KeyRing:
        return KeyRing(self.keys, now=self.clock.now(), access_token_ttl=900, clock_leeway=5)

    def rotate(self) -> None:
        """A new signing key; the old one stays published."""
        self.keys.append(generate_key("ES256", now=self.clock.now() + 1))

    def token(self, **claims: Any) -> str:
        token, _ = TokenIssuer(self.ring(), self.settings, self.clock).issue(
            "user-1", sid="fam-1", roles=["admin"], scope="read", **claims
        )
        return token

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.hits[path] += 1
        if self.down:
            raise httpx.ConnectError("down", request=request)
        if path == "/.well-known/oauth-authorization-server":
            return httpx.Response(
                200,
                json={
                    "issuer": self.metadata_issuer,
                    "jwks_uri": f"{ISSUER}/.well-known/jwks.json",
                    "introspection_endpoint": f"{ISSUER}/oauth/introspect",
                },
            )
        if path == "/.well-known/jwks.json":
            return httpx.Response(200, json=self.ring().jwks())
        if path == "/oauth/introspect":
            expected = "Basic " + base64.b64encode(b"svc:s3cret").decode()
            if request.headers.get("authorization") != expected:
                return httpx.Response(401, json={"error": "invalid_client"})
            form = dict(httpx.QueryParams(request.content.decode()))
            active = form["token"] not in self.revoked
            return httpx.Response(200, json={"active": True} if active else {"active": False})
        return httpx.Response(404)


@pytest.fixture
def clock() -> FrozenClock:
    """The one clock of issuer and verifier."""
    return FrozenClock()


@pytest.fixture
def issuer(clock: FrozenClock) -> FakeIssuer:
    """A fake issuer with one ES256 key."""
    return FakeIssuer(clock)


def make_verifier(issuer: FakeIssuer, **options: Any) -> RemoteVerifier:
    options.setdefault("audience", AUDIENCE)
    http = httpx.AsyncClient(transport=issuer.transport)
    return RemoteVerifier(ISSUER, http=http, clock=issuer.clock, **options)


async def test_accepts_a_token_signed_by_the_issuer(issuer: FakeIssuer) -> None:
    """A token from the issuer verifies; metadata and JWKS are fetched once."""
    verifier = make_verifier(issuer)
    token = issuer.token()
    claims = await verifier.verify(token)
    assert (claims.iss, claims.sub, claims.sid, claims.roles) == (
        ISSUER,
        "user-1",
        "fam-1",
        ("admin",),
    )
    await verifier.verify(token)
    assert issuer.hits["/.well-known/oauth-authorization-server"] == 1
    assert issuer.hits["/.well-known/jwks.json"] == 1


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "a.b.c", "x" * 70_000, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."],
)
async def test_garbage_is_invalid_token_without_refetching(issuer: FakeIssuer, token: str) -> None:
    """Malformed tokens are InvalidToken and never cause a JWKS refetch."""
    verifier = make_verifier(issuer)
    await verifier.start()
    with pytest.raises(InvalidToken):
        await verifier.verify(token)
    assert issuer.hits["/.well-known/jwks.json"] == 1


async def test_wrong_audience_is_refused(issuer: FakeIssuer) -> None:
    """A verifier for another audience refuses the token."""
    verifier = make_verifier(issuer, audience="https://other.example.test")
    with pytest.raises(InvalidToken):
        await verifier.verify(issuer.token())


async def test_metadata_naming_another_issuer_is_a_configuration_error(
    issuer: FakeIssuer,
) -> None:
    """The metadata's issuer must equal the configured one exactly (no trailing slash)."""
    issuer.metadata_issuer = ISSUER + "/"
    with pytest.raises(ConfigurationError):
        await make_verifier(issuer).start()


async def test_unreachable_issuer_fails_closed(issuer: FakeIssuer) -> None:
    """Without keys, verification is IssuerUnavailable (503), never an accept."""
    issuer.down = True
    with pytest.raises(IssuerUnavailable):
        await make_verifier(issuer).verify(issuer.token())


async def test_rotation_is_picked_up_on_unknown_kid(issuer: FakeIssuer) -> None:
    """A token from a newly rotated key triggers one refetch and then verifies."""
    verifier = make_verifier(issuer, min_refetch_interval=30)
    await verifier.verify(issuer.token())
    issuer.rotate()
    await verifier.verify(issuer.token())
    assert issuer.hits["/.well-known/jwks.json"] == 2


async def test_unknown_kids_refetch_at_most_once_per_interval(
    issuer: FakeIssuer, clock: FrozenClock
) -> None:
    """200 tokens with unknown kids cost one refetch per min_refetch_interval."""
    verifier = make_verifier(issuer, min_refetch_interval=30)
    await verifier.start()
    stranger = FakeIssuer(clock)  # same issuer URL, a key nobody published
    for _ in range(200):
        with pytest.raises(InvalidToken):
            await verifier.verify(stranger.token())
    assert issuer.hits["/.well-known/jwks.json"] == 2
    clock.advance(31)
    with pytest.raises(InvalidToken):
        await verifier.verify(stranger.token())
    assert issuer.hits["/.well-known/jwks.json"] == 3


async def test_keys_refresh_after_the_interval_and_survive_an_outage(
    issuer: FakeIssuer, clock: FrozenClock
) -> None:
    """After refresh_interval the JWKS is refetched; if the issuer is down, the
    keys already known keep verifying."""
    verifier = make_verifier(issuer, refresh_interval=60)
    token = issuer.token()
    await verifier.verify(token)
    clock.advance(61)
    issuer.down = True
    assert (await verifier.verify(token)).sub == "user-1"
    issuer.down = False
    clock.advance(61)
    await verifier.verify(token)
    assert issuer.hits["/.well-known/jwks.json"] == 3


async def test_strict_mode_refuses_a_token_the_issuer_revoked(
    issuer: FakeIssuer, clock: FrozenClock
) -> None:
    """With introspection, a revoked token is refused once the short positive
    cache has run out."""
    verifier = make_verifier(issuer, introspection=CLIENT, introspection_cache_ttl=2)
    token = issuer.token()
    await verifier.verify(token)
    issuer.revoked.add(token)
    await verifier.verify(token)  # the cached positive answer, < 2 s old
    clock.advance(2)
    with pytest.raises(InvalidToken):
        await verifier.verify(token)
    assert issuer.hits["/oauth/introspect"] == 2


async def test_strict_mode_with_wrong_client_credentials_fails_closed(
    issuer: FakeIssuer,
) -> None:
    """An introspection endpoint refusing our client is IssuerUnavailable, not an accept."""
    verifier = make_verifier(issuer, introspection=("svc", "wrong"))
    with pytest.raises(IssuerUnavailable):
        await verifier.verify(issuer.token())


@pytest.mark.parametrize(
    "options",
    [{"leeway": 3600}, {"introspection_cache_ttl": 60}, {"audience": ""}],
)
def test_dangerous_options_are_refused(issuer: FakeIssuer, options: dict[str, Any]) -> None:
    """A leeway over 300 s, a long introspection cache or no audience is refused."""
    with pytest.raises(ConfigurationError):
        make_verifier(issuer, **options)


# --- the FastAPI dependency ----------------------------------------------------------------


def protected_app(verifier: RemoteVerifier) -> FastAPI:
    app = FastAPI()
    install_error_handler(app)
    dependency = bearer_claims(verifier)

    @app.get("/orders")
    async def orders(claims: AccessTokenClaims = Depends(dependency)) -> dict[str, str]:  # noqa: B008
        return {"sub": claims.sub}

    return app


async def test_dependency_returns_claims_or_the_standard_401(issuer: FakeIssuer) -> None:
    """The dependency gives claims for a good token, 401 invalid_token for a bad one,
    401 Bearer without one, and refuses tokens in the query string."""
    app = protected_app(make_verifier(issuer))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        good = {"Authorization": f"Bearer {issuer.token()}"}
        response = await client.get("/orders", headers=good)
        assert response.status_code == 200 and response.json() == {"sub": "user-1"}

        response = await client.get("/orders", headers={"Authorization": "Bearer nope"})
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_token"
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'

        response = await client.get("/orders")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"

        response = await client.get("/orders", params={"access_token": issuer.token()})
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_token"

        response = await client.get(
            "/orders", params={"access_token": issuer.token()}, headers=good
        )
        assert response.status_code == 400


async def test_dependency_answers_503_when_the_issuer_is_down(issuer: FakeIssuer) -> None:
    """An unreachable issuer is 503 issuer_unavailable, with no detail about why."""
    issuer.down = True
    app = protected_app(make_verifier(issuer))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        response = await client.get("/orders", headers={"Authorization": "Bearer a.b.c"})
    assert response.status_code == 503
    body = json.loads(response.content)
    assert body["error"] == "issuer_unavailable" and ISSUER not in body["detail"]
