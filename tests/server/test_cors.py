"""CORS for the JSON, OAuth and discovery endpoints (``--cors-origins``, SEC-32).

First :class:`~keyturn.web.authn.cors.CorsMiddleware` around a tiny Starlette app (every
rule, prefixes and mounts), then keyturn's own app built with ``cors_origins``.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp
from tests.server.conftest import MakeClient
from tests.server.http_support import BASE

from keyturn.errors import ConfigurationError
from keyturn.settings import Settings
from keyturn.web.authn.cors import CorsMiddleware

SPA = "https://spa.example"
OTHER = "https://other.example:8443"
CREDENTIALED_ORIGINS = [SPA, "HTTPS://Other.Example:8443/"]

#: Origins that must never be granted: unlisted, null, look-alikes, wrong scheme or port.
REFUSED_ORIGINS = [
    "https://evil.example",
    "null",
    "https://spa.example.evil.example",
    "https://evilspa.example",
    "http://spa.example",
    "https://spa.example:444",
    "https://SPA.example",  # browsers serialize lower case; anything else is not them
]


async def ok(request: Request) -> Response:
    return JSONResponse({"path": request.url.path}, headers={"Vary": "Accept-Encoding"})


def tiny_app() -> Starlette:
    """Routes shaped like keyturn's, plus one of the host app's own."""
    return Starlette(
        routes=[
            Route("/auth/whoami", ok),
            Route("/oauth/token", ok, methods=["POST"]),
            Route("/.well-known/jwks.json", ok),
            Route("/api/things", ok),
        ]
    )


def client_for(app: ASGIApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("access-control-")}


def vary(response: httpx.Response) -> list[str]:
    return [part.strip().lower() for part in response.headers.get("vary", "").split(",")]


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type, x-csrf-token",
    }


@pytest.fixture
def cors_client() -> httpx.AsyncClient:
    return client_for(CorsMiddleware(tiny_app(), origins=CREDENTIALED_ORIGINS))


# --- actual requests ----------------------------------------------------------------------


@pytest.mark.parametrize("origin", [SPA, OTHER, "https://other.example:8443"])
async def test_a_listed_origin_gets_its_own_origin_and_credentials(
    cors_client: httpx.AsyncClient, origin: str
) -> None:
    """Exact match (listed origins are normalized): ACAO is the origin itself, with
    credentials; Vary keeps the app's own value and adds Origin."""
    async with cors_client:
        response = await cors_client.get("/auth/whoami", headers={"Origin": origin})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == origin
    assert response.headers["access-control-allow-credentials"] == "true"
    exposed = response.headers["access-control-expose-headers"].lower()
    assert "x-csrf-token" in exposed and "retry-after" in exposed
    assert "dpop-nonce" in exposed  # an SPA must read the nonce it is asked to use
    assert vary(response) == ["accept-encoding", "origin"]


@pytest.mark.parametrize("origin", REFUSED_ORIGINS)
async def test_other_origins_get_no_cors_headers(
    cors_client: httpx.AsyncClient, origin: str
) -> None:
    """Unlisted, null and look-alike origins: the request runs (CORS is not CSRF
    protection) but the answer carries no CORS header, only Vary: Origin."""
    async with cors_client:
        response = await cors_client.post("/oauth/token", headers={"Origin": origin})
    assert response.status_code == 200
    assert cors_headers(response) == {}
    assert "origin" in vary(response)


async def test_vary_origin_even_without_an_origin(cors_client: httpx.AsyncClient) -> None:
    """A cache must not serve a no-Origin answer to a listed origin, or vice versa."""
    async with cors_client:
        response = await cors_client.get("/auth/whoami")
    assert cors_headers(response) == {}
    assert "origin" in vary(response)


async def test_two_origin_headers_are_no_origin(cors_client: httpx.AsyncClient) -> None:
    """An ambiguous Origin is never granted."""
    async with cors_client:
        response = await cors_client.get("/auth/whoami", headers=[("Origin", SPA), ("Origin", SPA)])
    assert cors_headers(response) == {}


async def test_discovery_documents_are_public_without_credentials(
    cors_client: httpx.AsyncClient,
) -> None:
    """JWKS: any origin may read it with ACAO *, never with credentials; a listed
    origin still gets its own origin (a credentialed fetch would refuse *)."""
    async with cors_client:
        anyone = await cors_client.get(
            "/.well-known/jwks.json", headers={"Origin": "https://x.example"}
        )
        listed = await cors_client.get("/.well-known/jwks.json", headers={"Origin": SPA})
    assert anyone.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in anyone.headers
    assert listed.headers["access-control-allow-origin"] == SPA
    assert listed.headers["access-control-allow-credentials"] == "true"


async def test_routes_outside_keyturn_are_left_alone(cors_client: httpx.AsyncClient) -> None:
    """The host app's own routes get nothing from this middleware, not even Vary,
    and its preflights reach the app."""
    async with cors_client:
        response = await cors_client.get("/api/things", headers={"Origin": SPA})
        options = await cors_client.options("/api/things", headers=preflight(SPA))
    assert cors_headers(response) == {} and vary(response) == ["accept-encoding"]
    assert options.status_code == 405 and cors_headers(options) == {}


# --- preflights ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/oauth/token", "/auth/whoami", "/auth/sessions/abc"])
async def test_a_listed_origins_preflight_is_answered_204(
    cors_client: httpx.AsyncClient, path: str
) -> None:
    """204 with the origin, credentials, the methods and the four request headers
    keyturn reads (DPoP for sender-constrained tokens), and a max-age; the app itself
    is not called."""
    async with cors_client:
        response = await cors_client.options(path, headers=preflight(SPA, "DELETE"))
    assert response.status_code == 204 and response.content == b""
    assert response.headers["access-control-allow-origin"] == SPA
    assert response.headers["access-control-allow-credentials"] == "true"
    methods = {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
    assert methods == {"GET", "POST", "DELETE"}
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert allowed == {"authorization", "content-type", "x-csrf-token", "dpop"}
    assert 0 < int(response.headers["access-control-max-age"]) <= 7200
    assert "origin" in vary(response)


@pytest.mark.parametrize("origin", REFUSED_ORIGINS)
async def test_an_unlisted_origins_preflight_is_refused_without_cors_headers(
    cors_client: httpx.AsyncClient, origin: str
) -> None:
    """403 and no Access-Control-* header: the browser never sends the request."""
    async with cors_client:
        response = await cors_client.options("/oauth/token", headers=preflight(origin))
    assert response.status_code == 403
    assert cors_headers(response) == {}
    assert response.json()["error"] == "forbidden"


async def test_no_answer_ever_pairs_a_wildcard_with_credentials(
    cors_client: httpx.AsyncClient,
) -> None:
    """Across paths, methods and origins: ACAO * never comes with ACAC."""
    async with cors_client:
        for path in ("/auth/whoami", "/oauth/token", "/.well-known/jwks.json", "/api/things"):
            for origin in (SPA, *REFUSED_ORIGINS):
                for response in (
                    await cors_client.get(path, headers={"Origin": origin}),
                    await cors_client.options(path, headers=preflight(origin)),
                ):
                    if response.headers.get("access-control-allow-origin") == "*":
                        assert "access-control-allow-credentials" not in response.headers


# --- prefixes and mounts ---------------------------------------------------------------------


async def test_prefix_scopes_cors_to_keyturns_routes() -> None:
    """With prefix=/kt: /kt/auth/... is keyturn's, the host's /auth/... is not."""
    inner = tiny_app()
    host = Starlette(routes=[Mount("/kt", inner), Route("/auth/whoami", ok)])
    async with client_for(CorsMiddleware(host, origins=[SPA], prefix="/kt/")) as client:
        ours = await client.get("/kt/auth/whoami", headers={"Origin": SPA})
        theirs = await client.get("/auth/whoami", headers={"Origin": SPA})
        lookalike = await client.get("/ktx/auth/whoami", headers={"Origin": SPA})
    assert ours.headers["access-control-allow-origin"] == SPA
    assert cors_headers(theirs) == {} and cors_headers(lookalike) == {}


async def test_a_mounted_keyturn_app_applies_cors_below_its_root_path() -> None:
    """Middleware on a sub-app mounted at /id sees root_path=/id and still matches."""
    inner = CorsMiddleware(tiny_app(), origins=[SPA])
    host = Starlette(routes=[Mount("/id", inner)])
    async with client_for(host) as client:
        response = await client.get("/id/auth/whoami", headers={"Origin": SPA})
        answered = await client.options("/id/oauth/token", headers=preflight(SPA))
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SPA
    assert answered.status_code == 204


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize("origin", ["*", "null", "spa.example", "ftp://spa.example", ""])
def test_the_middleware_refuses_what_is_not_an_origin(origin: str) -> None:
    """A wildcard or junk in the list is a configuration error, never "allow all"."""
    with pytest.raises(ConfigurationError):
        CorsMiddleware(tiny_app(), origins=[origin])


@pytest.mark.parametrize(
    "origin", ["*", "null", "https://spa.example/app", "https://spa.example?x=1", "spa.example"]
)
def test_settings_refuse_what_is_not_an_origin(origin: str) -> None:
    """--cors-origins takes scheme://host[:port] only (a trailing / is tolerated)."""
    with pytest.raises(ValidationError, match="cors_origins"):
        Settings(cors_origins=[origin])
    assert Settings(cors_origins=["https://spa.example/"]).cors_origins == ["https://spa.example/"]


# --- keyturn's own app ------------------------------------------------------------------------


@pytest.fixture
def cors_app(make_app: Callable[..., FastAPI]) -> FastAPI:
    """keyturn's server app with ``--cors-origins https://spa.example``."""
    return make_app(
        Settings(database_url="sqlite+aiosqlite:///:memory:", cors_origins=[SPA], issuer=BASE)
    )


async def test_keyturn_answers_the_spas_preflight_and_its_errors(
    make_client: MakeClient, cors_app: FastAPI
) -> None:
    """Through the whole stack: the token endpoint's preflight is 204 for the SPA,
    and even an error answer (401) is readable by it; other origins get nothing."""
    async with make_client(app=cors_app, base_url=BASE) as client:
        answered = await client.options("/oauth/token", headers=preflight(SPA))
        unauthenticated = await client.get("/auth/whoami", headers={"Origin": SPA})
        refused = await client.options("/oauth/token", headers=preflight("https://evil.example"))
        health = await client.get("/healthz", headers={"Origin": SPA})
    assert answered.status_code == 204
    assert answered.headers["access-control-allow-origin"] == SPA
    assert answered.headers["x-content-type-options"] == "nosniff"  # still inside the stack
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["access-control-allow-origin"] == SPA
    assert unauthenticated.headers["access-control-allow-credentials"] == "true"
    assert refused.status_code == 403 and cors_headers(refused) == {}
    assert cors_headers(health) == {}


async def test_keyturn_grants_credentials_to_the_spa_on_sign_in(
    make_client: MakeClient, cors_app: FastAPI
) -> None:
    """A JSON sign-in from the listed origin: readable, with credentials."""
    async with make_client(app=cors_app, base_url=BASE) as client:
        body = {"email": "a@example.com", "password": "correct horse battery staple"}
        registered = await client.post("/auth/register", json=body, headers={"Origin": SPA})
        assert registered.status_code == 201, registered.text
        response = await client.post("/auth/login", json=body, headers={"Origin": SPA})
        jwks = await client.get("/.well-known/jwks.json", headers={"Origin": "https://x.example"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == SPA
    assert response.headers["access-control-allow-credentials"] == "true"
    assert "origin" in vary(response)
    assert jwks.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in jwks.headers
