"""keyturn.verify with DPoP (RFC 9449 section 7) for downstream services: bound
tokens only with a proof of their key, never as bearer tokens, in
:class:`RemoteVerifier` and in its FastAPI dependency (fake issuer of test_remote)."""

from __future__ import annotations

import httpx
import pytest
from fastapi import Depends, FastAPI
from joserfc.jwk import ECKey
from tests.unit.dpop.proofs import Client
from tests.unit.tokens.test_remote import AUDIENCE, FakeIssuer, clock, issuer, make_verifier

from keyturn.clock import FrozenClock
from keyturn.errors import InvalidDpopProof, InvalidDpopToken
from keyturn.tokens.claims import AccessTokenClaims
from keyturn.verify import DpopVerifier, MemoryReplayCache, RemoteVerifier
from keyturn.web.verify_dependency import bearer_claims, install_error_handler

__all__ = ["clock", "issuer"]

URL = "https://api.example.test/orders"


@pytest.fixture
def key(clock: FrozenClock) -> Client:
    """The client's DPoP key."""
    return Client(ECKey.generate_key("P-256"), "ES256", clock)


async def test_bound_token_verifies_with_its_proof(issuer: FakeIssuer, key: Client) -> None:
    """verify_dpop accepts a bound token with a proof of its key over the request."""
    verifier = make_verifier(issuer)
    token = issuer.token(jkt=key.jkt)
    claims = await verifier.verify_dpop(
        token, key.proof("GET", URL, access_token=token), method="GET", url=URL
    )
    assert claims.jkt == key.jkt


async def test_bound_token_is_refused_as_bearer(issuer: FakeIssuer, key: Client) -> None:
    """verify() (a bearer presentation) refuses a token with cnf.jkt: a copy is worthless."""
    verifier = make_verifier(issuer)
    with pytest.raises(InvalidDpopToken):
        await verifier.verify(issuer.token(jkt=key.jkt))


async def test_downstream_refusals(issuer: FakeIssuer, key: Client, clock: FrozenClock) -> None:
    """Another key, a replay, a wrong URL and an unbound token are each refused."""
    verifier = make_verifier(issuer)
    token = issuer.token(jkt=key.jkt)
    thief = Client(ECKey.generate_key("P-256"), "ES256", clock)
    with pytest.raises(InvalidDpopProof):
        await verifier.verify_dpop(
            token, thief.proof("GET", URL, access_token=token), method="GET", url=URL
        )
    proof = key.proof("GET", URL, access_token=token)
    await verifier.verify_dpop(token, proof, method="GET", url=URL)
    with pytest.raises(InvalidDpopProof):
        await verifier.verify_dpop(token, proof, method="GET", url=URL)
    with pytest.raises(InvalidDpopProof):
        other = key.proof("GET", "https://api.example.test/admin", access_token=token)
        await verifier.verify_dpop(token, other, method="GET", url=URL)
    unbound = issuer.token()
    with pytest.raises(InvalidDpopToken):
        await verifier.verify_dpop(
            unbound, key.proof("GET", URL, access_token=unbound), method="GET", url=URL
        )


async def test_replay_cache_can_be_shared_between_verifiers(
    issuer: FakeIssuer, key: Client
) -> None:
    """Two service instances given one replay cache refuse a proof the other accepted."""
    shared = MemoryReplayCache(issuer.clock)
    first, second = (
        make_verifier(issuer, dpop=DpopVerifier(shared, issuer.clock)) for _ in range(2)
    )
    token = issuer.token(jkt=key.jkt)
    proof = key.proof("GET", URL, access_token=token)
    await first.verify_dpop(token, proof, method="GET", url=URL)
    with pytest.raises(InvalidDpopProof):
        await second.verify_dpop(token, proof, method="GET", url=URL)


def _app(verifier: RemoteVerifier) -> FastAPI:
    app = FastAPI()
    install_error_handler(app)
    dependency = bearer_claims(verifier, origin="https://api.example.test")

    @app.get("/orders")
    async def orders(claims: AccessTokenClaims = Depends(dependency)) -> dict[str, str | None]:  # noqa: B008
        return {"sub": claims.sub, "jkt": claims.jkt}

    return app


async def test_dependency_reads_the_dpop_scheme(issuer: FakeIssuer, key: Client) -> None:
    """The FastAPI dependency accepts Authorization: DPoP with its proof (htu from the
    configured origin), refuses the same token as Bearer with a DPoP challenge, and a
    bad proof with invalid_dpop_proof."""
    app = _app(make_verifier(issuer, audience=AUDIENCE))
    token = issuer.token(jkt=key.jkt)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://internal:8080") as client:
        good = {"Authorization": f"DPoP {token}", "DPoP": key.proof("GET", URL, access_token=token)}
        response = await client.get("/orders", headers=good)
        assert response.status_code == 200, response.text
        assert response.json() == {"sub": "user-1", "jkt": key.jkt}

        response = await client.get("/orders", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith('DPoP error="invalid_token"')

        response = await client.get("/orders", headers=good)  # the same proof again
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_dpop_proof"
        assert response.headers["www-authenticate"].startswith('DPoP error="invalid_dpop_proof"')
