"""A plain Starlette app protected by ``KeyturnAuthBackend`` and ``@requires``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect
from tests.library.conftest import PASSWORD, Serve

from keyturn import Keyturn
from keyturn.web.authn.cookies import SESSION_COOKIE
from keyturn.web.starlette import KeyturnAuthBackend, KeyturnUser, on_auth_error


@requires("authenticated")
async def me(request: Request) -> JSONResponse:
    user = request.user
    assert isinstance(user, KeyturnUser)
    return JSONResponse(
        {
            "email": user.display_name,
            "via": user.principal.via,
            "scopes": sorted(request.auth.scopes),
        }
    )


@requires(["authenticated", "notes:write"])
async def write_note(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


@requires("role:admin")
async def admin(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


async def public(request: Request) -> JSONResponse:
    return JSONResponse({"authenticated": request.user.is_authenticated})


async def socket_me(websocket: WebSocket) -> None:
    """Accept anyone, then say who they are (the app decides what anonymity means)."""
    await websocket.accept()
    user = websocket.user
    principal = user.principal if isinstance(user, KeyturnUser) else None
    await websocket.send_json({"via": principal.via if principal else None})
    await websocket.close()


def starlette_app(kt: Keyturn, prefix: str = "") -> Starlette:
    return Starlette(
        routes=[
            Route("/me", me, methods=["GET", "POST"]),
            Route("/notes", write_note, methods=["POST"]),
            Route("/admin", admin),
            Route("/public", public),
            WebSocketRoute("/ws", socket_me),
        ],
        middleware=[
            Middleware(
                AuthenticationMiddleware,
                backend=KeyturnAuthBackend(kt, prefix=prefix),
                on_error=on_auth_error,
            )
        ],
        lifespan=kt.lifespan,
    )


async def test_tokens_and_sessions_reach_requires(
    make_kt: Callable[..., Keyturn], serve: Serve
) -> None:
    """A bearer token or a session cookie makes the request authenticated, with
    the token's scopes and the user's roles as Starlette scopes."""
    kt = make_kt()
    app = starlette_app(kt)
    async with serve(app) as client:
        assert (await client.get("/me")).status_code == 403  # Starlette's @requires answer
        assert (await client.get("/public")).json() == {"authenticated": False}
        await kt.accounts.register("ada@example.com", PASSWORD, roles=("admin",))
        issued = await kt.grants.password_grant(
            "ada@example.com", PASSWORD, scope="notes:write", ip="127.0.0.1", user_agent=None
        )
        bearer = {"Authorization": f"Bearer {issued.access_token}"}
        response = await client.get("/me", headers=bearer)
        assert response.status_code == 200
        assert response.json() == {
            "email": "ada@example.com",
            "via": "token",
            "scopes": ["authenticated", "notes:write", "role:admin"],
        }
        assert (await client.post("/notes", headers=bearer)).status_code == 200
        assert (await client.get("/admin", headers=bearer)).status_code == 200

        _, session = await kt.auth.sign_in(
            "ada@example.com", PASSWORD, ip="127.0.0.1", user_agent=None
        )
        client.cookies.set(SESSION_COOKIE, session.secret)
        by_cookie = await client.get("/me")
        assert by_cookie.json()["via"] == "session"
        assert by_cookie.json()["scopes"] == ["authenticated", "role:admin"]
        assert (
            await client.post("/notes", headers={"X-CSRF-Token": session.csrf_token})
        ).status_code == 403


async def test_cookie_posts_need_the_csrf_header(
    make_kt: Callable[..., Keyturn], serve: Serve
) -> None:
    """Unsafe cookie requests without X-CSRF-Token are 403 csrf_failed; with it they pass."""
    kt = make_kt()
    async with serve(starlette_app(kt)) as client:
        await kt.accounts.register("ada@example.com", PASSWORD)
        _, session = await kt.auth.sign_in(
            "ada@example.com", PASSWORD, ip="127.0.0.1", user_agent=None
        )
        client.cookies.set(SESSION_COOKIE, session.secret)
        refused = await client.post("/me")
        assert refused.status_code == 403
        assert refused.json()["error"] == "csrf_failed"
        accepted = await client.post("/me", headers={"X-CSRF-Token": session.csrf_token})
        assert accepted.status_code == 200


async def test_a_refused_token_is_a_401_invalid_token(
    make_kt: Callable[..., Keyturn], serve: Serve
) -> None:
    """A bearer token that fails verification is RFC 6750's 401, not anonymous."""
    kt = make_kt()
    async with serve(starlette_app(kt)) as client:
        response = await client.get("/public", headers={"Authorization": "Bearer garbage"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_keyturn_endpoints_mounted_in_a_starlette_app(
    make_kt: Callable[..., Keyturn], serve: Serve
) -> None:
    """A FastAPI app with keyturn installed, mounted at /id, serves sign-in for the
    Starlette app's routes: pages link under /id, the cookie reaches /me."""
    from fastapi import FastAPI
    from starlette.routing import Mount

    from keyturn.web import install

    kt = make_kt()
    keyturn_app = FastAPI()
    install(keyturn_app, kt)
    app = starlette_app(kt, prefix="/id")
    app.router.routes.append(Mount("/id", app=keyturn_app))
    async with serve(app) as client:
        page = await client.get("/id/login")
        assert page.status_code == 200
        assert 'action="/id/login"' in page.text
        account = {"email": "ada@example.com", "password": PASSWORD}
        assert (await client.post("/id/auth/register", json=account)).status_code == 201
        assert (await client.post("/id/auth/login", json=account)).status_code == 200
        again = await client.post("/id/auth/login", json=account)  # still CSRF-exempt when mounted
        assert again.status_code == 200
        assert again.headers["cache-control"] == "no-store"
        me_response = await client.get("/me")
        assert me_response.json()["via"] == "session"
        assert (await client.get("/id/auth/whoami")).json()["email"] == "ada@example.com"


# --- WebSocket handshakes (#10 item 2) ------------------------------------------------------

#: What Starlette's TestClient addresses: ``ws://testserver`` has this origin.
OWN_ORIGIN = "http://testserver"


async def _session_and_token(kt: Keyturn) -> tuple[str, str]:
    await kt.accounts.register("ada@example.com", PASSWORD)
    _, session = await kt.auth.sign_in("ada@example.com", PASSWORD, ip="127.0.0.1", user_agent=None)
    issued = await kt.grants.password_grant(
        "ada@example.com", PASSWORD, ip="127.0.0.1", user_agent=None
    )
    return session.secret, issued.access_token


@pytest.mark.parametrize(
    "origin",
    [{"Origin": "https://evil.com"}, {"Origin": "null"}, {}, {"Sec-Fetch-Site": "cross-site"}],
    ids=["foreign", "null", "missing", "sec-fetch-site"],
)
def test_a_cookie_websocket_from_another_site_is_refused(
    make_kt: Callable[..., Keyturn], origin: dict[str, str]
) -> None:
    """A WebSocket handshake with the session cookie and a foreign, null or
    missing Origin is closed before it is accepted: another site's page cannot
    open a socket that acts as the user (#10 item 2)."""
    kt = make_kt()
    with TestClient(starlette_app(kt)) as client:
        secret, _ = client.portal.call(_session_and_token, kt)  # type: ignore[union-attr]
        headers = {"Cookie": f"{SESSION_COOKIE}={secret}", **origin}
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            client.websocket_connect("/ws", headers=headers),
        ):
            pass
        assert refused.value.code == 1000  # Starlette's AuthenticationMiddleware closes


def test_a_cookie_websocket_from_this_site_and_a_bearer_websocket_pass(
    make_kt: Callable[..., Keyturn],
) -> None:
    """The same cookie with this site's Origin is authenticated; a bearer token
    needs no Origin at all; no credential is anonymous (#10 item 2)."""
    kt = make_kt()
    with TestClient(starlette_app(kt)) as client:
        secret, token = client.portal.call(_session_and_token, kt)  # type: ignore[union-attr]
        cookie = {"Cookie": f"{SESSION_COOKIE}={secret}", "Origin": OWN_ORIGIN}
        with client.websocket_connect("/ws", headers=cookie) as socket:
            assert socket.receive_json() == {"via": "session"}
        bearer = {"Authorization": f"Bearer {token}"}
        with client.websocket_connect("/ws", headers=bearer) as socket:
            assert socket.receive_json() == {"via": "token"}
        with client.websocket_connect("/ws", headers={"Origin": "https://evil.com"}) as socket:
            assert socket.receive_json() == {"via": None}
