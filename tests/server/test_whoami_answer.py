"""``GET /auth/whoami`` answered by the middleware (keyturn.web.routes.whoami): the
same bytes, headers and metrics as the FastAPI route, for sessions and tokens,
and nothing it must not answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx
import pytest
from fastapi import FastAPI
from tests.server.http_support import BASE

from keyturn.runtime import Keyturn
from keyturn.settings import Settings
from keyturn.web.app import create_app
from keyturn.web.authn.middleware import AuthnMiddleware

MakeClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]

PASSWORD = "correct horse battery staple"
CREDENTIALS = {"email": "who@example.com", "password": PASSWORD}


def without_shortcut(app: FastAPI) -> FastAPI:
    """``app`` with whoami left to the FastAPI route (the middleware's shortcut off)."""
    for middleware in app.user_middleware:
        if middleware.cls is AuthnMiddleware:
            middleware.kwargs["whoami_route"] = None
    app.middleware_stack = None
    return app


@pytest.fixture
def open_app(
    make_client: MakeClient, make_keyturn: Callable[..., Keyturn]
) -> Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]:
    """``open_app(shortcut=True)``: a client on a fresh app with one account."""

    @asynccontextmanager
    async def open_(*, shortcut: bool = True) -> AsyncIterator[httpx.AsyncClient]:
        settings = Settings(database_url="sqlite+aiosqlite:///:memory:")
        app = create_app(settings, keyturn=make_keyturn(settings))
        if not shortcut:
            without_shortcut(app)
        async with make_client(app=app, base_url=BASE) as client:
            response = await client.post("/auth/register", json=CREDENTIALS)
            assert response.status_code == 201, response.text
            yield client

    return open_


def comparable(response: httpx.Response) -> tuple[int, list[tuple[str, str]], list[object]]:
    """Status, every header in order, and the body's keys in order with the type
    of each value: the per-account values (ids, CSRF token, times) differ between
    two apps, their presence and shape must not."""
    volatile = {"x-csrf-token", "content-length"}
    headers = [(k, "…" if k in volatile else v) for k, v in response.headers.multi_items()]
    body = [(key, type(value).__name__) for key, value in response.json().items()]
    return response.status_code, headers, body


async def signed_in_whoami(client: httpx.AsyncClient) -> httpx.Response:
    response = await client.post("/auth/login", json=CREDENTIALS)
    assert response.status_code == 200, response.text
    return await client.get("/auth/whoami")


async def test_a_session_whoami_is_the_routes_answer_byte_for_byte(open_app) -> None:  # type: ignore[no-untyped-def]
    """The middleware's answer has the route's status, headers (security headers,
    no-store, CSRF token) and JSON shape, so clients cannot tell them apart."""
    async with open_app(shortcut=True) as fast, open_app(shortcut=False) as slow:
        fast_answer, slow_answer = await signed_in_whoami(fast), await signed_in_whoami(slow)
    assert comparable(fast_answer) == comparable(slow_answer)
    assert fast_answer.status_code == 200
    assert fast_answer.headers["cache-control"] == "no-store"
    assert fast_answer.headers["x-content-type-options"] == "nosniff"
    assert fast_answer.json().keys() == slow_answer.json().keys()
    assert fast_answer.json()["via"] == "session"
    assert int(fast_answer.headers["content-length"]) == len(fast_answer.content)


async def test_the_csrf_header_is_the_sessions_own_on_every_call(open_app) -> None:  # type: ignore[no-untyped-def]
    """The cached answer carries the CSRF token of the caller's session: the one
    sign-in returned, and a new one after the session ID rotates."""
    async with open_app() as client:
        login = await client.post("/auth/login", json=CREDENTIALS)
        token = login.json()["csrf_token"]
        for _ in range(3):
            response = await client.get("/auth/whoami")
            assert response.headers["x-csrf-token"] == token
        rotated = await client.post(
            "/auth/reauthenticate", json={"password": PASSWORD}, headers={"X-CSRF-Token": token}
        )
        assert rotated.status_code == 204, rotated.text
        new_token = rotated.headers["x-csrf-token"]
        assert new_token != token
        assert (await client.get("/auth/whoami")).headers["x-csrf-token"] == new_token


async def test_a_token_whoami_matches_the_route(open_app) -> None:  # type: ignore[no-untyped-def]
    """A bearer caller gets the same answer either way: the token's sid and exp."""
    answers = []
    for shortcut in (True, False):
        async with open_app(shortcut=shortcut) as client:
            login = await client.post("/auth/login", json=CREDENTIALS)
            token = (
                await client.post(
                    "/auth/token", headers={"X-CSRF-Token": login.json()["csrf_token"]}
                )
            ).json()["access_token"]
            client.cookies.clear()
            response = await client.get(
                "/auth/whoami", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 200, response.text
            assert response.json()["via"] == "token"
            assert "x-csrf-token" not in response.headers
            answers.append(comparable(response))
    assert answers[0] == answers[1]


async def test_refusals_and_other_methods_still_reach_the_route(open_app) -> None:  # type: ignore[no-untyped-def]
    """No caller: 401 with the route's error; a bad token: 401 with
    WWW-Authenticate; POST and HEAD: what the router says (405)."""
    async with open_app() as client:
        anonymous = await client.get("/auth/whoami")
        assert anonymous.status_code == 401
        assert anonymous.json()["error"] == "not_authenticated"
        forged = await client.get("/auth/whoami", headers={"Authorization": "Bearer x.y.z"})
        assert forged.status_code == 401
        assert forged.headers["www-authenticate"].startswith("Bearer")
        await client.post("/auth/login", json=CREDENTIALS)
        assert (await client.head("/auth/whoami")).status_code == 405
        posted = await client.post("/auth/whoami", headers={"X-CSRF-Token": "nope"})
        assert posted.status_code in (403, 405)


async def test_the_answer_is_counted_under_the_route_in_metrics(open_app) -> None:  # type: ignore[no-untyped-def]
    """/metrics labels the middleware's answers with the route's template, as before."""
    async with open_app() as client:
        await signed_in_whoami(client)
        await client.get("/auth/whoami")
        metrics = (await client.get("/metrics")).text
    counted = [
        line
        for line in metrics.splitlines()
        if line.startswith("keyturn_http_requests_total")
        and 'route="/auth/whoami"' in line
        and 'status="200"' in line
    ]
    assert counted and float(counted[0].rsplit(" ", 1)[1]) == 2.0


async def test_a_signed_out_cookie_is_refused_at_once(open_app) -> None:  # type: ignore[no-untyped-def]
    """The cached answer dies with its session: after sign-out the same cookie gets 401."""
    async with open_app() as client:
        login = await client.post("/auth/login", json=CREDENTIALS)
        cookie = client.cookies.get("__Host-keyturn_session")
        assert (await client.get("/auth/whoami")).status_code == 200
        out = await client.post(
            "/auth/logout", headers={"X-CSRF-Token": login.json()["csrf_token"]}
        )
        assert out.status_code == 204
        replay = await client.get(
            "/auth/whoami", headers={"Cookie": f"__Host-keyturn_session={cookie}"}
        )
        assert replay.status_code == 401


def test_the_rendering_is_starlettes_json_response() -> None:
    """Body bytes and header order are exactly what JSONResponse produced before
    the answer was cached (non-ASCII e-mail included)."""
    from fastapi.responses import JSONResponse

    from keyturn.web.routes.whoami import _render

    body = {"sub": "u1", "email": "zoë@example.com", "roles": ["admin"], "via": "session"}
    content, headers = _render(body, "csrf-token-value")
    reference = JSONResponse(body, headers={"X-CSRF-Token": "csrf-token-value"})
    assert content == reference.body
    assert headers == reference.raw_headers
