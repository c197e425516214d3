"""DPoP at ``POST /oauth/token``, black-box (SPEC "Sender-constrained tokens", RFC 9449
section 5): bound access tokens, a public client's refresh family bound to its key,
confidential clients free to choose, ``--require-dpop``, ``--dpop-nonce``, and the
400 answers. The main flow runs on SQLite and PostgreSQL (``app``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI
from tests.server.code_flow_support import RegisteredClient, register_client
from tests.server.dpop_support import (
    TOKEN_URL,
    claims_of,
    dpop_auth,
    dpop_code_tokens,
    dpop_key,
    refresh_with,
)
from tests.server.token_support import (
    BASE,
    EMAIL,
    PASSWORD,
    MakeClient,
    app,
    build_app,
    clock,
    login,
)

from keyturn.clock import FrozenClock

__all__ = ["app", "build_app", "clock"]


async def _signed_in(make_client: MakeClient, app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(app=app, base_url=BASE) as opened:
        response = await opened.post("/auth/register", json={"email": EMAIL, "password": PASSWORD})
        assert response.status_code == 201
        opened.headers["X-CSRF-Token"] = await login(opened)
        yield opened


@pytest.fixture
async def browser(make_client: MakeClient, app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-in browser on ``app`` (SQLite, then PostgreSQL)."""
    async for opened in _signed_in(make_client, app):
        yield opened


@pytest.fixture
async def spa(app: FastAPI, browser: httpx.AsyncClient) -> RegisteredClient:
    """A first-party public client."""
    return await register_client(app, name="SPA")


@pytest.fixture
async def web_app(app: FastAPI, browser: httpx.AsyncClient) -> RegisteredClient:
    """A first-party confidential client."""
    return await register_client(
        app, name="Web app", confidential=True, redirect_uris=("https://web.example/cb",)
    )


async def test_code_grant_with_a_proof_issues_a_bound_dpop_token(
    browser: httpx.AsyncClient, spa: RegisteredClient, clock: FrozenClock
) -> None:
    """A proof at the token endpoint yields token_type DPoP and cnf.jkt = the key's thumbprint."""
    key = dpop_key(clock)
    response = await dpop_code_tokens(browser, spa, key)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "DPoP"
    assert claims_of(body["access_token"])["cnf"] == {"jkt": key.jkt}
    whoami = await browser.get("/auth/whoami", headers=dpop_auth(key, body["access_token"]))
    assert whoami.status_code == 200, whoami.text
    assert whoami.json()["via"] == "token"


async def test_public_refresh_is_bound_to_the_key(
    browser: httpx.AsyncClient, spa: RegisteredClient, clock: FrozenClock
) -> None:
    """A public client's refresh token needs a proof of its key; another key or none is refused."""
    key, thief = dpop_key(clock), dpop_key(clock)
    first = (await dpop_code_tokens(browser, spa, key)).json()
    stolen = first["refresh_token"]
    for attempt in (None, thief):
        refused = await refresh_with(browser, stolen, attempt, client_id=spa.id)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"] == "invalid_dpop_proof"
        assert refused.headers["cache-control"] == "no-store"
    renewed = await refresh_with(browser, stolen, key, client_id=spa.id)
    assert renewed.status_code == 200, renewed.text
    body = renewed.json()
    assert body["token_type"] == "DPoP"
    assert claims_of(body["access_token"])["cnf"] == {"jkt": key.jkt}
    # The family is still bound after rotation.
    again = await refresh_with(browser, body["refresh_token"], thief, client_id=spa.id)
    assert again.json()["error"] == "invalid_dpop_proof"


async def test_confidential_client_refresh_is_not_key_bound(
    browser: httpx.AsyncClient, web_app: RegisteredClient, clock: FrozenClock
) -> None:
    """A confidential client may use DPoP: its access token is bound, its refresh token
    (already bound to its secret) may be used without a proof and then gives a bearer token."""
    assert web_app.secret is not None
    key = dpop_key(clock)
    first = (await dpop_code_tokens(browser, web_app, key)).json()
    assert first["token_type"] == "DPoP"
    auth = (web_app.id, web_app.secret)
    plain = await refresh_with(browser, first["refresh_token"], None, auth=auth)
    assert plain.status_code == 200, plain.text
    assert plain.json()["token_type"] == "Bearer"
    assert "cnf" not in claims_of(plain.json()["access_token"])
    bound = await refresh_with(browser, plain.json()["refresh_token"], key, auth=auth)
    assert bound.json()["token_type"] == "DPoP"


async def test_bad_proofs_at_the_token_endpoint_are_400_invalid_dpop_proof(
    browser: httpx.AsyncClient, spa: RegisteredClient, clock: FrozenClock
) -> None:
    """A proof for another URL, method, or an old one is 400 invalid_dpop_proof, and no token."""
    key = dpop_key(clock)
    for proof in (
        {"htu": f"{BASE}/oauth/other"},
        {"htm": "GET"},
        {"claims": {"iat": int(clock.now()) - 3600}},
    ):
        htm = proof.pop("htm", "POST")
        htu = proof.pop("htu", TOKEN_URL)
        bad = key.proof(htm, htu, **proof)  # type: ignore[arg-type]
        response = await browser.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": "x", "client_id": spa.id},
            headers={"DPoP": bad},
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "invalid_dpop_proof"


async def test_a_token_request_proof_is_accepted_once(
    browser: httpx.AsyncClient, spa: RegisteredClient, clock: FrozenClock
) -> None:
    """The same proof sent twice to the token endpoint is refused the second time (jti)."""
    key = dpop_key(clock)
    first = (await dpop_code_tokens(browser, spa, key)).json()
    proof = key.proof("POST", TOKEN_URL)
    form = {"grant_type": "refresh_token", "client_id": spa.id}
    ok = await browser.post(
        "/oauth/token",
        data={**form, "refresh_token": first["refresh_token"]},
        headers={"DPoP": proof},
    )
    assert ok.status_code == 200, ok.text
    replay = await browser.post(
        "/oauth/token",
        data={**form, "refresh_token": ok.json()["refresh_token"]},
        headers={"DPoP": proof},
    )
    assert replay.json()["error"] == "invalid_dpop_proof"


async def test_metadata_lists_the_dpop_algorithms(browser: httpx.AsyncClient) -> None:
    """RFC 8414 metadata lists dpop_signing_alg_values_supported (asymmetric only)."""
    metadata = (await browser.get("/.well-known/oauth-authorization-server")).json()
    algs = metadata["dpop_signing_alg_values_supported"]
    assert "ES256" in algs
    assert not any(alg.startswith("HS") or alg == "none" for alg in algs)


async def test_introspection_returns_cnf(
    browser: httpx.AsyncClient, spa: RegisteredClient, web_app: RegisteredClient, clock: FrozenClock
) -> None:
    """Introspection of a bound access token (and a bound refresh token) returns cnf.jkt."""
    assert web_app.secret is not None
    key = dpop_key(clock)
    body = (await dpop_code_tokens(browser, spa, key)).json()
    for token in (body["access_token"], body["refresh_token"]):
        answer = await browser.post(
            "/oauth/introspect", data={"token": token}, auth=(web_app.id, web_app.secret)
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["active"] is True
        assert answer.json()["cnf"] == {"jkt": key.jkt}


# --- settings: --require-dpop and --dpop-nonce (SQLite) ---------------------------------


@pytest.fixture
def sqlite_app(build_app: Callable[..., FastAPI], sqlite_url: str) -> Callable[..., FastAPI]:
    """``sqlite_app(**settings)``: an app on a fresh SQLite file."""
    return lambda **settings: build_app(sqlite_url, **settings)


async def test_require_dpop_refuses_public_clients_without_a_proof(
    make_client: MakeClient, sqlite_app: Callable[..., FastAPI], clock: FrozenClock
) -> None:
    """--require-dpop: a public client without a proof gets 400 invalid_dpop_proof; a
    confidential client may still take a bearer token; with a proof the public client is served."""
    app = sqlite_app(require_dpop=True)
    async for browser in _signed_in(make_client, app):
        spa = await register_client(app, name="SPA")
        web = await register_client(
            app, name="Web", confidential=True, redirect_uris=("https://web.example/cb",)
        )
        refused = await dpop_code_tokens(browser, spa, None)
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_dpop_proof"
        confidential = await dpop_code_tokens(browser, web, None)
        assert confidential.json()["token_type"] == "Bearer"
        bound = await dpop_code_tokens(browser, spa, dpop_key(clock))
        assert bound.json()["token_type"] == "DPoP"


async def test_dpop_nonce_is_demanded_then_accepted(
    make_client: MakeClient, sqlite_app: Callable[..., FastAPI], clock: FrozenClock
) -> None:
    """--dpop-nonce: a proof without the server's nonce is 400 use_dpop_nonce with a
    DPoP-Nonce header; the retry carrying it is served."""
    app = sqlite_app(dpop_nonce=True)
    async for browser in _signed_in(make_client, app):
        spa = await register_client(app, name="SPA")
        key = dpop_key(clock)
        first = (await dpop_code_tokens(browser, spa, key, nonce="made-up")).json()
        assert first["error"] == "use_dpop_nonce"
        response = await dpop_code_tokens(browser, spa, key)
        assert response.status_code == 400
        nonce = response.headers["dpop-nonce"]
        served = await dpop_code_tokens(browser, spa, key, nonce=nonce)
        assert served.status_code == 200, served.text
        assert served.json()["token_type"] == "DPoP"


async def test_client_credentials_with_a_proof_is_bound(
    app: FastAPI, browser: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """A service's client_credentials grant with a proof gets a DPoP token bound to its key."""
    created = await app.state.keyturn.clients.add(
        "reports", confidential=True, scopes=["read"], grant_types=["client_credentials"]
    )
    key = dpop_key(clock)
    response = await browser.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "read"},
        headers={"DPoP": key.proof("POST", TOKEN_URL)},
        auth=(created.client.id, created.secret),
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "DPoP"
    assert claims_of(response.json()["access_token"])["cnf"] == {"jkt": key.jkt}
