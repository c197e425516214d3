"""keyturn inside a host FastAPI app: the caller on every route, CSRF on the host's
own unsafe routes, and the host's error handling left alone."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi import FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from starlette.testclient import TestClient, WebSocketDenialResponse
from starlette.types import Message
from tests.library.conftest import PASSWORD, Host, Serve, password_grant, sign_up

from keyturn import FrozenClock, Keyturn, Principal
from keyturn.web import CurrentPrincipal, OptionalPrincipal, get_keyturn
from keyturn.web.authn.cookies import SESSION_COOKIE


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


# --- WebSocket routes of a host app (#10 item 2) --------------------------------------------


def socket_app(host: Host) -> FastAPI:
    """A host app with keyturn installed and one WebSocket route that needs a caller."""
    app, _ = host()

    @app.websocket("/ws")
    async def who(websocket: WebSocket, principal: CurrentPrincipal) -> None:
        await websocket.accept()
        await websocket.send_json({"email": principal.email, "via": principal.via})
        await websocket.close()

    return app


def signed_in(client: TestClient) -> str:
    """Register and sign in through the JSON API; the session cookie's value."""
    account = {"email": "ada@example.com", "password": PASSWORD}
    assert client.post("/auth/register", json=account).status_code == 201
    login = client.post("/auth/login", json=account)
    assert login.status_code == 200, login.text
    secret: str = login.cookies[SESSION_COOKIE]
    return secret


def test_a_host_websocket_route_gets_the_caller(host: Host) -> None:
    """``current_principal`` works in a FastAPI WebSocket route: the session cookie
    from this site's Origin, or a bearer token without any (#10 item 2)."""
    with TestClient(socket_app(host), base_url="https://testserver") as client:
        secret = signed_in(client)
        token_response = client.post(
            "/oauth/token",
            data={"grant_type": "password", "username": "ada@example.com", "password": PASSWORD},
        )
        token = token_response.json()["access_token"]
        client.cookies.clear()
        cookie = {"Cookie": f"{SESSION_COOKIE}={secret}", "Origin": "http://testserver"}
        with client.websocket_connect("/ws", headers=cookie) as socket:
            assert socket.receive_json() == {"email": "ada@example.com", "via": "session"}
        bearer = {"Authorization": f"Bearer {token}"}
        with client.websocket_connect("/ws", headers=bearer) as socket:
            assert socket.receive_json() == {"email": "ada@example.com", "via": "token"}


@pytest.mark.parametrize(
    "origin",
    [{"Origin": "https://evil.com"}, {"Origin": "null"}, {}, {"Sec-Fetch-Site": "cross-site"}],
    ids=["foreign", "null", "missing", "sec-fetch-site"],
)
def test_a_cross_site_cookie_handshake_to_a_host_app_is_denied(
    host: Host, origin: dict[str, str]
) -> None:
    """With install(), a cookie handshake from another site (or with no Origin) is
    denied before the route runs: an HTTP 403 csrf_failed denial response (#10 item 2)."""
    with TestClient(socket_app(host), base_url="https://testserver") as client:
        secret = signed_in(client)
        client.cookies.clear()
        headers = {"Cookie": f"{SESSION_COOKIE}={secret}", **origin}
        with (
            pytest.raises(WebSocketDenialResponse) as denied,
            client.websocket_connect("/ws", headers=headers),
        ):
            pass
    assert denied.value.status_code == 403
    assert denied.value.json()["error"] == "csrf_failed"


def test_an_anonymous_handshake_to_a_protected_route_is_a_401_denial(host: Host) -> None:
    """No credential: the route's ``current_principal`` refuses with 401, and a
    refused bearer token with 401 invalid_token (#10 item 2)."""
    with TestClient(socket_app(host), base_url="https://testserver") as client:
        with pytest.raises(WebSocketDenialResponse) as anonymous, client.websocket_connect("/ws"):
            pass
        assert anonymous.value.status_code == 401
        assert anonymous.value.json()["error"] == "not_authenticated"
        garbage = {"Authorization": "Bearer garbage"}
        with (
            pytest.raises(WebSocketDenialResponse) as refused,
            client.websocket_connect("/ws", headers=garbage),
        ):
            pass
        assert refused.value.status_code == 401
        assert refused.value.json()["error"] == "invalid_token"


def test_without_the_denial_extension_a_refused_handshake_is_closed_1008(host: Host) -> None:
    """A server without the WebSocket denial-response extension gets
    ``websocket.close`` with 1008 (policy violation) instead (#10 item 2)."""
    app = socket_app(host)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    with TestClient(app, base_url="https://testserver") as client:
        secret = signed_in(client)
        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "scheme": "wss",
            "path": "/ws",
            "raw_path": b"/ws",
            "root_path": "",
            "query_string": b"",
            "headers": [
                (b"host", b"testserver"),
                (b"origin", b"https://evil.com"),
                (b"cookie", f"{SESSION_COOKIE}={secret}".encode()),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 443),
            "subprotocols": [],
            "extensions": {},  # no "websocket.http.response"
        }
        client.portal.call(app, scope, receive, send)  # type: ignore[union-attr]
    assert sent == [{"type": "websocket.close", "code": 1008}]
