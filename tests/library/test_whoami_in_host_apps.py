"""keyturn's whoami in a host app: answered early only where nothing of the host's
would be skipped (keyturn.web.routes.whoami)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, Request
from starlette.types import ASGIApp, Receive, Scope, Send
from tests.library.conftest import Serve, sign_up

from keyturn import Keyturn
from keyturn.web import install


class Counting:
    """A host middleware that counts the requests it sees, by path."""

    seen: list[str]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            Counting.seen.append(scope["path"])
        await self.app(scope, receive, send)


async def test_host_middleware_added_before_install_still_sees_whoami(
    make_kt: Callable[..., Keyturn], serve: Serve
) -> None:
    """Middleware the host added first sits inside keyturn's: every signed-in
    whoami still passes through it (the early answer is off)."""
    kt = make_kt()
    app = FastAPI(lifespan=kt.lifespan)
    Counting.seen = []
    app.add_middleware(Counting)
    install(app, kt)
    async with serve(app) as client:
        await sign_up(client)
        for _ in range(3):
            response = await client.get("/auth/whoami")
            assert response.status_code == 200
            assert response.json()["email"] == "ada@example.com"
    assert Counting.seen.count("/auth/whoami") == 3


async def test_a_host_wide_dependency_still_runs_for_whoami(
    make_kt: Callable[..., Keyturn], serve: Serve
) -> None:
    """``FastAPI(dependencies=[...])`` applies to keyturn's routes, whoami included."""
    calls: list[str] = []

    async def audit(request: Request) -> None:
        calls.append(request.url.path)

    kt = make_kt()
    app = FastAPI(lifespan=kt.lifespan, dependencies=[Depends(audit)])
    install(app, kt)
    async with serve(app) as client:
        await sign_up(client)
        assert (await client.get("/auth/whoami")).status_code == 200
    assert calls.count("/auth/whoami") == 1


async def test_a_plain_host_app_gets_the_early_answer_with_its_prefix(
    host: Callable[..., tuple[FastAPI, Any]], serve: Serve
) -> None:
    """With nothing of the host's inside, whoami under a prefix is answered early
    (the route's own endpoint never runs) and is the same answer."""
    from keyturn.web.routes import auth as routes_auth

    app, _ = host(prefix="/id")
    calls: list[str] = []
    real = routes_auth.whoami

    async def spy(request: Request) -> Any:
        calls.append(request.url.path)
        return await real(request)

    for route in app.router.routes:
        if getattr(route, "endpoint", None) is real:
            route.app = type(route)(route.path, spy, methods=["GET"]).app  # type: ignore[attr-defined]
    async with serve(app) as client:
        await sign_up(client, prefix="/id")
        response = await client.get("/id/auth/whoami")
        assert response.status_code == 200
        assert response.json()["email"] == "ada@example.com"
        assert "x-csrf-token" in response.headers
        client.cookies.clear()
        assert (await client.get("/id/auth/whoami")).status_code == 401
    assert calls == ["/id/auth/whoami"]  # only the refusal reached the route
