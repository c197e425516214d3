"""keyturn inside a host FastAPI app: the caller on every route, CSRF on the host's
own unsafe routes, and the host's error handling left alone."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from tests.library.conftest import Host, Serve, password_grant, sign_up

from keyturn import FrozenClock, Keyturn, Principal
from keyturn.web import OptionalPrincipal, get_keyturn


class Note(BaseModel):
    text: str


def notes_app(host: Callable[..., tuple[FastAPI, Keyturn]], **options: object) -> FastAPI:
    app, _ = host(**options)

    @app.post("/notes")
    async def add_note(note: Note, principal: OptionalPrincipal) -> dict[str, str | None]:
        return {"text": note.text, "by": principal.email if principal else None}

    @app.get("/teapot")
    async def teapot() -> None:
        raise HTTPException(418, "short and stout")

    @app.get("/whose")
    async def whose(request: Request) -> dict[str, bool]:
        return {"same": get_keyturn(request) is request.app.state.keyturn}

    return app


async def test_cookie_posts_to_host_routes_need_the_csrf_token(host: Host, serve: Serve) -> None:
    """A session-cookie POST to the host's own route without X-CSRF-Token is 403
    csrf_failed; with it, or with a bearer token instead, it goes through."""
    async with serve(notes_app(host)) as client:
        csrf = await sign_up(client)
        refused = await client.post("/notes", json={"text": "hi"})
        assert refused.status_code == 403
        assert refused.json()["error"] == "csrf_failed"
        cross_site = await client.post(
            "/notes",
            json={"text": "hi"},
            headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
        )
        assert cross_site.status_code == 403
        accepted = await client.post("/notes", json={"text": "hi"}, headers={"X-CSRF-Token": csrf})
        assert accepted.status_code == 200
        assert accepted.json() == {"text": "hi", "by": "ada@example.com"}
        token = await password_grant(client)
        client.cookies.clear()
        by_token = await client.post(
            "/notes", json={"text": "hi"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert by_token.status_code == 200
        anonymous = await client.post("/notes", json={"text": "hi"})
        assert anonymous.json() == {"text": "hi", "by": None}


async def test_host_errors_keep_the_host_format(host: Host, serve: Serve) -> None:
    """The host's validation errors, HTTPExceptions and 404s keep FastAPI's
    format (422, {"detail": ...}); keyturn's routes keep keyturn's."""
    async with serve(notes_app(host)) as client:
        invalid = await client.post("/notes", json={"nope": 1})
        assert invalid.status_code == 422
        assert isinstance(invalid.json()["detail"], list)
        teapot = await client.get("/teapot")
        assert teapot.status_code == 418
        assert teapot.json() == {"detail": "short and stout"}
        missing = await client.get("/nowhere")
        assert missing.status_code == 404
        assert missing.json() == {"detail": "Not Found"}

        keyturn_invalid = await client.post("/auth/login", json={"email": 1})
        assert keyturn_invalid.status_code == 400
        assert keyturn_invalid.json()["error"] == "invalid_request"
        wrong_type = await client.post(
            "/auth/login", content=b"x", headers={"Content-Type": "text/plain"}
        )
        assert wrong_type.status_code == 415
        assert wrong_type.json()["error"] == "unsupported_media_type"


async def test_host_exception_handlers_still_apply(host: Host, serve: Serve) -> None:
    """A handler the host registered before install() still answers its own routes."""
    app, _ = host()

    async def handler(request: Request, exc: Exception) -> PlainTextResponse:
        return PlainTextResponse("host says no", status_code=400)

    fresh = FastAPI()
    fresh.add_exception_handler(HTTPException, handler)
    from keyturn.web import install

    install(fresh, app.state.keyturn)

    @fresh.get("/boom")
    async def boom() -> None:
        raise HTTPException(409)

    async with serve(fresh, lifespan=False) as client:
        await app.state.keyturn.start()
        try:
            response = await client.get("/boom")
            assert response.status_code == 400
            assert response.text == "host says no"
            assert (await client.post("/auth/logout")).json()["error"] == "not_authenticated"
        finally:
            await app.state.keyturn.close()


async def test_routes_find_keyturn_on_the_scope(host: Host, serve: Serve) -> None:
    """get_keyturn reads the instance the middleware put on the request scope."""
    async with serve(notes_app(host)) as client:
        assert (await client.get("/whose")).json() == {"same": True}


async def test_pages_can_be_left_out(host: Host, serve: Serve) -> None:
    """install(pages=False): the JSON and OAuth API without /login or /static."""
    async with serve(notes_app(host, pages=False)) as client:
        assert (await client.get("/login")).status_code == 404
        assert (await client.get("/static/keyturn.css")).status_code == 404
        await sign_up(client)
        assert (await client.get("/auth/whoami")).status_code == 200


async def test_security_headers_cover_host_routes(host: Host, serve: Serve) -> None:
    """The host's own answers carry keyturn's security headers too."""
    async with serve(notes_app(host)) as client:
        response = await client.get("/whose")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"


async def test_principal_carries_auth_time(host: Host, serve: Serve, clock: FrozenClock) -> None:
    """Principal.auth_time is the session's sign-in time, and a token's auth_time claim."""
    app, kt = host()

    @app.get("/auth-time")
    async def auth_time(request: Request) -> dict[str, float | None]:
        principal: Principal | None = request.scope["keyturn.principal"]
        return {"auth_time": principal.auth_time if principal else None}

    async with serve(app) as client:
        signed_in_at = clock.now()
        await sign_up(client)
        clock.advance(10)
        assert (await client.get("/auth-time")).json() == {"auth_time": signed_in_at}
        token = await password_grant(client)
        client.cookies.clear()
        claims = kt.token_verifier.verify(token)
        assert claims.auth_time == int(clock.now())
        response = await client.get("/auth-time", headers={"Authorization": f"Bearer {token}"})
        assert response.json() == {"auth_time": float(int(clock.now()))}
