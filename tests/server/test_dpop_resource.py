"""DPoP at keyturn's own resources, black-box (RFC 9449 section 7): the resolver
accepts a bound token only as ``Authorization: DPoP`` with a valid proof of its key
over the request, refuses it as ``Bearer``, and answers 401 with a ``DPoP``
challenge; ``--dpop-nonce`` works the same way at resources (SQLite)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.server.code_flow_support import register_client
from tests.server.dpop_support import (
    WHOAMI_URL,
    claims_of,
    dpop_auth,
    dpop_code_tokens,
    dpop_key,
)
from tests.server.token_support import (
    BASE,
    EMAIL,
    PASSWORD,
    MakeClient,
    bearer,
    build_app,
    clock,
    login,
)
from tests.unit.dpop.proofs import Client

from keyturn.clock import FrozenClock

__all__ = ["build_app", "clock"]


class Signed:
    """A signed-in browser, a public client's DPoP key and its bound access token."""

    def __init__(self, app: FastAPI, http: httpx.AsyncClient, key: Client, token: str) -> None:
        self.app, self.http, self.key, self.token = app, http, key, token

    async def whoami(self, headers: dict[str, str]) -> httpx.Response:
        return await self.http.get("/auth/whoami", headers=headers)


async def _bound(
    make_client: MakeClient, app: FastAPI, clock: FrozenClock
) -> AsyncIterator[Signed]:
    async with make_client(app=app, base_url=BASE) as http:
        response = await http.post("/auth/register", json={"email": EMAIL, "password": PASSWORD})
        assert response.status_code == 201
        http.headers["X-CSRF-Token"] = await login(http)
        spa = await register_client(app, name="SPA")
        key = dpop_key(clock)
        nonces = app.state.keyturn.dpop.nonces
        proof = {"nonce": nonces.current()} if nonces is not None else {}
        response = await dpop_code_tokens(http, spa, key, **proof)
        assert response.status_code == 200, response.text
        http.cookies.clear()  # from here on only the token speaks for the caller
        yield Signed(app, http, key, response.json()["access_token"])


@pytest.fixture
async def signed(
    make_client: MakeClient, build_app: Callable[..., FastAPI], sqlite_url: str, clock: FrozenClock
) -> AsyncIterator[Signed]:
    """A bound token on a default app (SQLite)."""
    async for value in _bound(make_client, build_app(sqlite_url), clock):
        yield value


def _challenge(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    return response.headers["www-authenticate"]


async def test_bound_token_with_its_proof_is_accepted(signed: Signed) -> None:
    """Authorization: DPoP plus a fresh proof of the token's key passes the resolver."""
    response = await signed.whoami(dpop_auth(signed.key, signed.token))
    assert response.status_code == 200, response.text
    assert response.json()["via"] == "token"


async def test_bound_token_sent_as_bearer_is_refused(signed: Signed) -> None:
    """A copied DPoP token used as a bearer token is 401 with a DPoP invalid_token challenge."""
    challenge = _challenge(await signed.whoami(bearer(signed.token)))
    assert challenge.startswith('DPoP error="invalid_token"')
    both = bearer(signed.token) | {"DPoP": signed.key.proof(access_token=signed.token)}
    assert _challenge(await signed.whoami(both)).startswith("DPoP ")


async def test_replayed_proof_is_refused(signed: Signed) -> None:
    """The same proof twice: the second request is 401 invalid_dpop_proof."""
    headers = dpop_auth(signed.key, signed.token)
    assert (await signed.whoami(headers)).status_code == 200
    assert 'error="invalid_dpop_proof"' in _challenge(await signed.whoami(headers))


@pytest.mark.parametrize(
    "change",
    [
        {"htm": "POST"},
        {"htu": f"{BASE}/auth/sessions"},
        {"htu": "https://elsewhere.example/auth/whoami"},
        {"claims": {"ath": "A" * 43}},
        {"claims": {"iat": 1}},
        {"header": {"typ": "JWT"}},
    ],
    ids=["htm", "htu-path", "htu-host", "ath", "iat", "typ"],
)
async def test_proof_not_matching_the_request_is_refused(
    signed: Signed, change: dict[str, Any]
) -> None:
    """A proof for another method, URL or token, too old, or of the wrong type is 401."""
    htm = change.pop("htm", "GET")
    htu = change.pop("htu", WHOAMI_URL)
    headers = {
        "Authorization": f"DPoP {signed.token}",
        "DPoP": signed.key.proof(htm, htu, access_token=signed.token, **change),
    }
    assert 'DPoP error="invalid_dpop_proof"' in _challenge(await signed.whoami(headers))


async def test_proof_of_another_key_is_refused(signed: Signed, clock: FrozenClock) -> None:
    """A thief with the token and their own key cannot use it (cnf.jkt mismatch)."""
    thief = dpop_key(clock)
    headers = {
        "Authorization": f"DPoP {signed.token}",
        "DPoP": thief.proof(access_token=signed.token),
    }
    assert 'error="invalid_dpop_proof"' in _challenge(await signed.whoami(headers))


async def test_missing_or_doubled_proof_is_refused(signed: Signed) -> None:
    """Authorization: DPoP without a DPoP header, or with two, is 401 invalid_dpop_proof."""
    alone = {"Authorization": f"DPoP {signed.token}"}
    assert 'error="invalid_dpop_proof"' in _challenge(await signed.whoami(alone))
    one, two = (signed.key.proof(access_token=signed.token) for _ in range(2))
    response = await signed.http.get(
        "/auth/whoami",
        headers=[("Authorization", f"DPoP {signed.token}"), ("DPoP", one), ("DPoP", two)],
    )
    assert 'error="invalid_dpop_proof"' in _challenge(response)


async def test_unbound_token_sent_as_dpop_is_refused(signed: Signed) -> None:
    """A bearer token (no cnf) presented with the DPoP scheme is 401 invalid_token, even
    with a valid proof; as Bearer it is served."""
    claims = claims_of(signed.token)
    unbound, _ = signed.app.state.keyturn.token_issuer.issue(claims["sub"], sid=claims["sid"])
    headers = dpop_auth(signed.key, unbound)
    assert _challenge(await signed.whoami(headers)).startswith('DPoP error="invalid_token"')
    assert (await signed.whoami(bearer(unbound))).status_code == 200


async def test_garbage_sent_as_dpop_gets_a_dpop_challenge(signed: Signed) -> None:
    """An invalid token with the DPoP scheme is 401 with a DPoP invalid_token challenge."""
    headers = dpop_auth(signed.key, "not-a-token")
    assert _challenge(await signed.whoami(headers)).startswith('DPoP error="invalid_token"')


async def test_the_dpop_scheme_is_case_insensitive(signed: Signed) -> None:
    """RFC 9110 auth schemes are case-insensitive: 'dpop' works like 'DPoP'."""
    headers = dpop_auth(signed.key, signed.token)
    headers["Authorization"] = f"dpop {signed.token}"
    assert (await signed.whoami(headers)).status_code == 200


async def test_nonces_at_resources(
    make_client: MakeClient, build_app: Callable[..., FastAPI], sqlite_url: str, clock: FrozenClock
) -> None:
    """--dpop-nonce: a resource demands the nonce (401 use_dpop_nonce + DPoP-Nonce); with it
    the request passes; a previous window's nonce passes and gets the fresh one back."""
    app = build_app(sqlite_url, dpop_nonce=True)
    async for signed in _bound(make_client, app, clock):
        keyturn_nonces = app.state.keyturn.dpop.nonces
        refused = await signed.whoami(dpop_auth(signed.key, signed.token))
        assert 'DPoP error="use_dpop_nonce"' in _challenge(refused)
        fresh = refused.headers["dpop-nonce"]
        served = await signed.whoami(dpop_auth(signed.key, signed.token, nonce=fresh))
        assert served.status_code == 200, served.text
        assert "dpop-nonce" not in served.headers
        clock.advance(keyturn_nonces.window)  # the nonce is now the previous window's
        older = await signed.whoami(dpop_auth(signed.key, signed.token, nonce=fresh))
        assert older.status_code == 200, older.text
        assert older.headers["dpop-nonce"] == keyturn_nonces.current() != fresh
