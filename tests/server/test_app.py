"""The app skeleton: lifespan, health, metrics, security headers."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import anyio
import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse

from keyturn.clock import Clock
from keyturn.errors import StoreUnavailable
from keyturn.runtime import Keyturn
from keyturn.settings import Settings
from keyturn.stores.memory import MemoryKeyStore, MemoryUserStore
from keyturn.stores.memory.tokens import MemoryRevocationStore
from keyturn.web.metrics import Metrics
from keyturn.web.routes import health

MakeClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


class DownStorage:
    """A storage double whose backend is unreachable."""

    durable = False

    def __init__(self) -> None:
        self.users = MemoryUserStore()
        self.keys = MemoryKeyStore()  # signing keys load at start; only ping is down
        self.revocations = MemoryRevocationStore()  # the replica loads at start too

    def throttle_storage(self, clock: Clock) -> None:
        return None

    async def ping(self) -> None:
        raise StoreUnavailable()

    async def close(self) -> None:
        return None


class HangingStorage(DownStorage):
    """A storage double whose ping never answers."""

    async def ping(self) -> None:
        await anyio.sleep(60)


# --- health -----------------------------------------------------------------------


async def test_healthz_reports_ok_and_revocation_mode(make_client: MakeClient) -> None:
    """A reachable store gives 200 with the database status and revocation mode."""
    async with make_client() as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "revocation_mode": "strict"}


async def test_healthz_warns_in_stateless_mode(make_client: MakeClient) -> None:
    """Stateless revocation is announced in the health body (SPEC "Tokens")."""
    async with make_client(Settings(revocation_mode="stateless")) as client:
        body = (await client.get("/healthz")).json()
    assert body["revocation_mode"] == "stateless"
    assert "not checked for revocation" in body["warning"]


async def test_healthz_is_503_when_store_is_down(
    make_client: MakeClient, make_keyturn: Callable[..., Keyturn]
) -> None:
    """An unreachable store makes health 503 store_unavailable, never 500."""
    async with make_client(keyturn=make_keyturn(storage=DownStorage())) as client:
        response = await client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "store_unavailable"
    assert body["status"] == "unavailable" and body["database"] == "unavailable"
    assert body["detail"]


async def test_healthz_is_503_when_store_hangs(
    make_client: MakeClient, make_keyturn: Callable[..., Keyturn], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store that does not answer in time counts as unavailable."""
    monkeypatch.setattr(health, "PING_TIMEOUT", 0.05)
    async with make_client(keyturn=make_keyturn(storage=HangingStorage())) as client:
        response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["error"] == "store_unavailable"


# --- lifespan ---------------------------------------------------------------------


async def test_lifespan_starts_and_closes_a_keyturn_it_started(
    make_app: Callable[..., FastAPI], fast_keyturn_without_storage: Keyturn
) -> None:
    """A Keyturn not yet started is started by the lifespan and closed after it."""
    keyturn = fast_keyturn_without_storage
    app = make_app(keyturn=keyturn)
    async with app.router.lifespan_context(app):
        await keyturn.storage.ping()
    with pytest.raises(RuntimeError):
        keyturn.storage  # noqa: B018


async def test_lifespan_leaves_a_caller_started_keyturn_open(
    make_app: Callable[..., FastAPI], fast_keyturn_without_storage: Keyturn
) -> None:
    """A Keyturn the caller started is neither restarted nor closed by the app."""
    async with fast_keyturn_without_storage as keyturn:
        storage = keyturn.storage
        app = make_app(keyturn=keyturn)
        async with app.router.lifespan_context(app):
            assert keyturn.storage is storage
        await keyturn.storage.ping()


@pytest.fixture
def fast_keyturn_without_storage(make_keyturn: Callable[..., Keyturn]) -> Keyturn:
    """A Keyturn that opens its own (in-memory SQLite) storage on start."""
    return make_keyturn(storage=None)


def test_create_app_exposes_keyturn_and_metrics(make_app: Callable[..., FastAPI]) -> None:
    """Routes find the runtime and metrics on app.state."""
    app = make_app()
    assert isinstance(app.state.keyturn, Keyturn)
    assert isinstance(app.state.metrics, Metrics)


async def test_openapi_is_served_but_interactive_docs_are_not(make_client: MakeClient) -> None:
    """/openapi.json stays for generated docs; /docs and /redoc are off."""
    async with make_client() as client:
        assert (await client.get("/openapi.json")).status_code == 200
        assert (await client.get("/docs")).status_code == 404
        assert (await client.get("/redoc")).status_code == 404


# --- metrics ----------------------------------------------------------------------


async def test_metrics_count_requests_by_route_template(
    make_client: MakeClient, make_app: Callable[..., FastAPI]
) -> None:
    """Requests are labelled by route template, unmatched paths by one label."""
    app = make_app()

    @app.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    async with make_client(app=app) as client:
        await client.get("/healthz")
        await client.get("/things/a")
        await client.get("/things/b")
        await client.get("/no/such/path/12345")
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'keyturn_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    assert (
        'keyturn_http_requests_total{method="GET",route="/things/{thing_id}",status="200"} 2.0'
        in text
    )
    assert 'route="unmatched",status="404"' in text
    assert "/things/a" not in text and "12345" not in text
    assert 'keyturn_http_request_duration_seconds_count{method="GET",route="/healthz"} 1.0' in text
    assert 'keyturn_logins_total{outcome="failure"} 0.0' in text


async def test_metrics_registries_are_per_app(make_app: Callable[..., FastAPI]) -> None:
    """Two apps in one process keep separate counters."""
    first, second = make_app(), make_app()
    first.state.metrics.logins.labels(outcome="success").inc()
    assert 'outcome="success"} 1.0' in first.state.metrics.render().decode()
    assert 'outcome="success"} 0.0' in second.state.metrics.render().decode()


# --- security headers ---------------------------------------------------------------


def _add_html_route(app: FastAPI) -> None:
    @app.get("/page", response_class=HTMLResponse)
    async def page() -> str:
        return "<!doctype html><title>t</title>"


async def test_html_responses_carry_csp_and_frame_protection(
    make_client: MakeClient, make_app: Callable[..., FastAPI]
) -> None:
    """HTML pages get CSP, nosniff, framing and referrer protection (SEC-75)."""
    app = make_app()
    _add_html_route(app)
    async with make_client(app=app) as client:
        response = await client.get("/page")
    headers = response.headers
    csp = headers["content-security-policy"]
    for directive in ("frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"):
        assert directive in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert "strict-transport-security" not in headers


async def test_json_responses_carry_nosniff_but_no_csp(make_client: MakeClient) -> None:
    """JSON gets nosniff; CSP is only for HTML."""
    async with make_client() as client:
        response = await client.get("/healthz")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in response.headers


async def test_error_responses_carry_security_headers(make_client: MakeClient) -> None:
    """Even a 404 gets the security headers."""
    async with make_client() as client:
        response = await client.get("/missing")
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_hsts_only_over_https(make_client: MakeClient) -> None:
    """HSTS is sent on HTTPS requests and never on plain HTTP."""
    async with make_client(base_url="https://testserver") as client:
        secure = await client.get("/healthz")
    async with make_client() as client:
        plain = await client.get("/healthz")
    assert secure.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    assert "strict-transport-security" not in plain.headers


HTTPS_AT_PROXY = {"X-Forwarded-Proto": "https"}


@pytest.mark.parametrize(
    ("trusted", "headers", "hsts"),
    [
        (["127.0.0.1"], HTTPS_AT_PROXY, True),
        (["127.0.0.0/8"], {"x-forwarded-proto": "HTTPS"}, True),
        (["127.0.0.1"], {}, False),
        (["127.0.0.1"], {"X-Forwarded-Proto": "http"}, False),
        (["127.0.0.1"], {"X-Forwarded-Proto": "https, http"}, False),
        (["10.0.0.0/8"], HTTPS_AT_PROXY, False),  # the peer is not a trusted proxy
        ([], HTTPS_AT_PROXY, False),
    ],
    ids=["trusted", "trusted-cidr", "no-header", "http", "list", "untrusted-peer", "no-proxies"],
)
async def test_hsts_behind_a_trusted_tls_proxy(
    make_client: MakeClient, trusted: list[str], headers: dict[str, str], hsts: bool
) -> None:
    """A plain-HTTP request from one of --trusted-proxies with X-Forwarded-Proto:
    https is HTTPS for HSTS; the header from anyone else is ignored (#10 item 10a)."""
    settings = Settings(database_url="sqlite+aiosqlite:///:memory:", trusted_proxies=trusted)
    async with make_client(settings) as client:  # the ASGI peer is 127.0.0.1
        response = await client.get("/healthz", headers=headers)
    assert response.status_code == 200
    assert ("strict-transport-security" in response.headers) is hsts


async def test_a_repeated_forwarded_proto_is_ignored(make_client: MakeClient) -> None:
    """Two X-Forwarded-Proto headers (one maybe the client's own) are not believed
    (#10 item 10a)."""
    settings = Settings(database_url="sqlite+aiosqlite:///:memory:", trusted_proxies=["127.0.0.1"])
    async with make_client(settings) as client:
        response = await client.get(
            "/healthz",
            headers=[("X-Forwarded-Proto", "https"), ("X-Forwarded-Proto", "https")],
        )
    assert "strict-transport-security" not in response.headers


async def test_too_many_header_fields_are_431(make_client: MakeClient) -> None:
    """More header fields than max_header_count: 431 headers_too_large, with the
    security headers, before any route runs; at the limit, served (#10 item 8)."""
    settings = Settings(database_url="sqlite+aiosqlite:///:memory:", max_header_count=30)
    async with make_client(settings) as client:
        # httpx adds host, accept, accept-encoding, connection and user-agent.
        too_many = await client.get("/livez", headers={f"x-h{i}": "1" for i in range(26)})
        enough = await client.get("/livez", headers={f"x-h{i}": "1" for i in range(25)})
    assert too_many.status_code == 431
    assert too_many.json()["error"] == "headers_too_large"
    assert too_many.headers["x-content-type-options"] == "nosniff"
    assert enough.status_code == 200


async def test_no_version_disclosure(make_client: MakeClient) -> None:
    """No Server or X-Powered-By header (SEC-74)."""
    async with make_client() as client:
        for path in ("/healthz", "/missing"):
            response = await client.get(path)
            assert "server" not in response.headers
            assert "x-powered-by" not in response.headers


async def test_auth_paths_are_not_cached_unless_route_decides(
    make_client: MakeClient, make_app: Callable[..., FastAPI]
) -> None:
    """Auth responses get Cache-Control: no-store; a route's own value wins."""
    app = make_app()

    @app.get("/auth/thing")
    async def auth_thing() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/account/cached")
    async def cached() -> JSONResponse:
        return JSONResponse({}, headers={"Cache-Control": "private, max-age=5"})

    @app.get("/authority")
    async def not_auth() -> dict[str, bool]:
        return {"ok": True}

    async with make_client(app=app) as client:
        assert (await client.get("/auth/thing")).headers["cache-control"] == "no-store"
        assert (await client.get("/account/cached")).headers["cache-control"] == (
            "private, max-age=5"
        )
        assert "cache-control" not in (await client.get("/authority")).headers
