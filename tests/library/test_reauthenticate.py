"""``POST /auth/reauthenticate {"password"}``: a fresh sign-in for a browser session."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from tests.library.conftest import PASSWORD, Host, Serve, password_grant, sign_up
from tests.server.http_support import set_cookies

from keyturn import FrozenClock, Keyturn
from keyturn.web.authn.cookies import SESSION_COOKIE


async def test_reauthentication_rotates_the_session_and_resets_auth_time(
    host: Callable[..., tuple[FastAPI, Keyturn]], serve: Serve, clock: FrozenClock
) -> None:
    """204 with a new session ID (the old cookie is dead), a new CSRF token, and
    auth_time moved to now; the sign-in (handle) is the same."""
    app, kt = host()
    async with serve(app) as client:
        csrf = await sign_up(client)
        old_secret = client.cookies[SESSION_COOKIE]
        before = (await client.get("/auth/whoami")).json()
        clock.advance(1000)
        response = await client.post(
            "/auth/reauthenticate", json={"password": PASSWORD}, headers={"X-CSRF-Token": csrf}
        )
        assert response.status_code == 204
        new_secret, attributes = set_cookies(response)[SESSION_COOKIE]
        assert new_secret != old_secret
        assert "httponly" in attributes and "secure" in attributes
        assert response.headers["x-csrf-token"] != csrf
        after = (await client.get("/auth/whoami")).json()
        assert after["session_id"] == before["session_id"]
        validated = await kt.sessions.validate(new_secret)
        assert validated.session.auth_time == clock.now()
        client.cookies.clear()
        client.cookies.set(SESSION_COOKIE, old_secret)
        assert (await client.get("/auth/whoami")).status_code == 401


async def test_reauthentication_needs_the_csrf_token(host: Host, serve: Serve) -> None:
    """It is a cookie-authenticated POST like any other."""
    app, _ = host()
    async with serve(app) as client:
        await sign_up(client)
        response = await client.post("/auth/reauthenticate", json={"password": PASSWORD})
    assert response.status_code == 403
    assert response.json()["error"] == "csrf_failed"


async def test_wrong_passwords_count_toward_the_sign_in_throttle(host: Host, serve: Serve) -> None:
    """A wrong password is 401 invalid_credentials; enough of them lock the
    account like failed sign-ins do (429 even with the right password)."""
    app, kt = host()
    async with serve(app) as client:
        csrf = await sign_up(client)
        headers = {"X-CSRF-Token": csrf}
        limit = kt.settings.login_max_account_failures
        for _ in range(limit):
            wrong = await client.post(
                "/auth/reauthenticate", json={"password": "not the password"}, headers=headers
            )
            assert wrong.status_code == 401
            assert wrong.json()["error"] == "invalid_credentials"
        throttled = await client.post(
            "/auth/reauthenticate", json={"password": PASSWORD}, headers=headers
        )
        assert throttled.status_code == 429
        assert "retry-after" in throttled.headers
        login = await client.post(
            "/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
        )
        assert login.status_code == 429


async def test_bearer_callers_are_told_to_use_the_password_grant(host: Host, serve: Serve) -> None:
    """400 invalid_request naming the password grant; anonymous callers get 401."""
    app, _ = host()
    async with serve(app) as client:
        assert (
            await client.post("/auth/reauthenticate", json={"password": PASSWORD})
        ).status_code == 401
        await sign_up(client)
        token = await password_grant(client)
        client.cookies.clear()
        response = await client.post(
            "/auth/reauthenticate",
            json={"password": PASSWORD},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "password grant" in response.json()["detail"]
