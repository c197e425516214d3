"""``require(roles=, scopes=, accept=, fresh=)`` on a host app's routes: each
refusal with its own status, code and ``WWW-Authenticate`` (RFC 6750, RFC 9470)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi import Depends, FastAPI
from tests.library.conftest import PASSWORD, Serve, password_grant, sign_up

from keyturn import FrozenClock, Keyturn, Principal
from keyturn.web import require
from keyturn.web.policy import Policy


def policy_app(host: Callable[..., tuple[FastAPI, Keyturn]]) -> tuple[FastAPI, Keyturn]:
    app, kt = host()

    @app.get("/admin")
    async def admin(p: Principal = Depends(require(roles=("admin",)))) -> dict[str, str]:  # noqa: B008
        return {"email": p.email}

    @app.get("/notes")
    async def notes(p: Principal = Depends(require(scopes=("notes:read",)))) -> dict[str, str]:  # noqa: B008
        return {"via": p.via}

    @app.get("/browser-only", dependencies=[Depends(require(accept=("session",)))])
    async def browser_only() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/api-only", dependencies=[Depends(require(accept=("token",)))])
    async def api_only() -> dict[str, bool]:
        return {"ok": True}

    @app.post("/danger", dependencies=[Depends(require(fresh=300))])
    async def danger() -> dict[str, bool]:
        return {"ok": True}

    @app.get(
        "/strict",
        dependencies=[
            Depends(require(roles=("admin",), scopes=("notes:write",), accept=("token",), fresh=60))
        ],
    )
    async def strict() -> dict[str, bool]:
        return {"ok": True}

    return app, kt


@pytest.fixture
def app_and_kt(host: Callable[..., tuple[FastAPI, Keyturn]]) -> tuple[FastAPI, Keyturn]:
    return policy_app(host)


async def bearer(
    client: httpx.AsyncClient, scope: str = "", email: str = "ada@example.com"
) -> dict[str, str]:
    return {"Authorization": f"Bearer {await password_grant(client, email, scope=scope)}"}


async def test_anonymous_callers_get_401_with_a_bearer_challenge(
    app_and_kt: tuple[FastAPI, Keyturn], serve: Serve
) -> None:
    """No credential at all: 401 not_authenticated and ``WWW-Authenticate: Bearer``."""
    app, _ = app_and_kt
    async with serve(app) as client:
        for path in ("/admin", "/notes", "/browser-only", "/api-only", "/strict"):
            response = await client.get(path)
            assert response.status_code == 401, path
            assert response.json()["error"] == "not_authenticated"
            assert response.headers["www-authenticate"] == "Bearer"


async def test_a_refused_token_is_invalid_token_not_a_policy_error(
    app_and_kt: tuple[FastAPI, Keyturn], serve: Serve
) -> None:
    """A garbage bearer token is 401 invalid_token before any policy runs."""
    app, _ = app_and_kt
    async with serve(app) as client:
        response = await client.get("/admin", headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


async def test_roles_are_enforced_for_sessions_and_tokens(
    app_and_kt: tuple[FastAPI, Keyturn], serve: Serve
) -> None:
    """Without the role: 403 forbidden; with it, by cookie or token: 200."""
    app, kt = app_and_kt
    async with serve(app) as client:
        await sign_up(client)
        assert (await client.get("/admin")).json()["error"] == "forbidden"
        assert (await client.get("/admin")).status_code == 403
        await kt.accounts.register("root@example.com", PASSWORD, roles=("admin",))
        headers = await bearer(client, email="root@example.com")
        by_token = await client.get("/admin", headers=headers)
        assert by_token.status_code == 200
        assert by_token.json() == {"email": "root@example.com"}
        login = await client.post(
            "/auth/login", json={"email": "root@example.com", "password": PASSWORD}
        )
        assert login.status_code == 200
        assert (await client.get("/admin")).status_code == 200


async def test_a_token_without_the_scope_gets_insufficient_scope(
    app_and_kt: tuple[FastAPI, Keyturn], serve: Serve
) -> None:
    """RFC 6750 3.1: 403 insufficient_scope naming the scope the route needs."""
    app, _ = app_and_kt
    async with serve(app) as client:
        await sign_up(client)
        response = await client.get("/notes", headers=await bearer(client, scope="profile"))
        assert response.status_code == 403
        assert response.json()["error"] == "insufficient_scope"
        assert (
            response.headers["www-authenticate"]
            == 'Bearer error="insufficient_scope", scope="notes:read"'
        )
        scoped = await client.get(
            "/notes", headers=await bearer(client, scope="notes:read profile")
        )
        assert scoped.status_code == 200
        assert scoped.json() == {"via": "token"}


async def test_a_session_is_not_limited_by_scopes(
    app_and_kt: tuple[FastAPI, Keyturn], serve: Serve
) -> None:
    """A browser session is the user in person: a scope requirement does not refuse it."""
    app, _ = app_and_kt
    async with serve(app) as client:
        await sign_up(client)
        response = await client.get("/notes")
    assert response.status_code == 200
    assert response.json() == {"via": "session"}


async def test_session_only_route_refuses_a_token_and_says_what_it_accepts(
    app_and_kt: tuple[FastAPI, Keyturn], serve: Serve
) -> None:
    """accept=("session",): a bearer caller gets 401 naming the session cookie."""
    app, _ = app_and_kt
    async with serve(app) as client:
        await sign_up(client)
        assert (await client.get("/browser-only")).status_code == 200
        client.cookies.clear()
        response = await client.get("/browser-only", headers=await bearer(client))
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert "session cookie" in response.json()["detail"]


async def test_token_only_route_refuses_a_session_and_says_what_it_accepts(
    app_and_kt: tuple[FastAPI, Keyturn], serve: Serve
) -> None:
    """accept=("token",): a cookie caller gets 401 naming the bearer token."""
    app, _ = app_and_kt
    async with serve(app) as client:
        await sign_up(client)
        response = await client.get("/api-only")
        assert response.status_code == 401
        assert "bearer token" in response.json()["detail"]
        client.cookies.clear()
        assert (await client.get("/api-only", headers=await bearer(client))).status_code == 200


async def test_fresh_session_passes_then_expires_then_reauthenticates(
    app_and_kt: tuple[FastAPI, Keyturn], serve: Serve, clock: FrozenClock
) -> None:
    """fresh=300: a new sign-in passes; 301 s later it is 401
    insufficient_user_authentication with max_age; re-authenticating passes again."""
    app, _ = app_and_kt
    async with serve(app) as client:
        csrf = await sign_up(client)
        assert (await client.post("/danger", headers={"X-CSRF-Token": csrf})).status_code == 200
        clock.advance(301)
        stale = await client.post("/danger", headers={"X-CSRF-Token": csrf})
        assert stale.status_code == 401
        assert stale.json()["error"] == "insufficient_user_authentication"
        assert stale.headers["www-authenticate"] == (
            'Bearer error="insufficient_user_authentication", max_age="300"'
        )
        reauth = await client.post(
            "/auth/reauthenticate", json={"password": PASSWORD}, headers={"X-CSRF-Token": csrf}
        )
        assert reauth.status_code == 204
        csrf = reauth.headers["x-csrf-token"]
        assert (await client.post("/danger", headers={"X-CSRF-Token": csrf})).status_code == 200


async def test_fresh_token_follows_the_password_grant_time_across_refreshes(
    app_and_kt: tuple[FastAPI, Keyturn], serve: Serve, clock: FrozenClock
) -> None:
    """A token's freshness is its sign-in's: refreshing does not make it fresh again."""
    app, _ = app_and_kt
    async with serve(app) as client:
        await sign_up(client)
        client.cookies.clear()
        granted = await client.post(
            "/oauth/token",
            data={"grant_type": "password", "username": "ada@example.com", "password": PASSWORD},
        )
        tokens = granted.json()
        headers = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert (await client.post("/danger", headers=headers)).status_code == 200
        clock.advance(400)
        refreshed = await client.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
        assert refreshed.status_code == 200
        headers = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
        response = await client.post("/danger", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"] == "insufficient_user_authentication"
        assert "password grant" in response.json()["detail"]


async def test_the_policy_checks_kind_then_roles_then_scopes_then_freshness(
    app_and_kt: tuple[FastAPI, Keyturn], serve: Serve, clock: FrozenClock
) -> None:
    """All four at once: each failure is reported in that order, and all met is 200."""
    app, kt = app_and_kt
    async with serve(app) as client:
        await sign_up(client)
        assert (await client.get("/strict")).json()["error"] == "not_authenticated"  # a session
        client.cookies.clear()
        plain = await bearer(client, scope="notes:write")
        assert (await client.get("/strict", headers=plain)).json()["error"] == "forbidden"
        await kt.accounts.register("root@example.com", PASSWORD, roles=("admin",))
        unscoped = await bearer(client, email="root@example.com")
        assert (await client.get("/strict", headers=unscoped)).json()[
            "error"
        ] == "insufficient_scope"
        scoped = await bearer(client, scope="notes:write", email="root@example.com")
        assert (await client.get("/strict", headers=scoped)).status_code == 200
        clock.advance(61)
        stale = await client.get("/strict", headers=scoped)
        assert stale.json()["error"] == "insufficient_user_authentication"


async def test_a_token_without_auth_time_is_never_fresh(
    app_and_kt: tuple[FastAPI, Keyturn], serve: Serve
) -> None:
    """Tokens issued without the optional ``auth_time`` claim still verify, but
    count as not fresh."""
    app, kt = app_and_kt
    async with serve(app) as client:
        user = await kt.accounts.register("old@example.com", PASSWORD)
        token, claims = kt.token_issuer.issue(user.id, sid="legacy-family")
        assert claims.auth_time is None
        headers = {"Authorization": f"Bearer {token}"}
        whoami = await client.get("/auth/whoami", headers=headers)
        assert whoami.status_code == 200
        response = await client.post("/danger", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "insufficient_user_authentication"


def test_malformed_policies_fail_at_definition_time() -> None:
    """Mistakes in a policy surface when the route is declared, not per request."""
    with pytest.raises(TypeError):
        require(roles="admin")
    with pytest.raises(ValueError, match="accept"):
        require(accept=("cookie",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scope"):
        require(scopes=('bad"scope',))
    with pytest.raises(ValueError, match="fresh"):
        require(fresh=-1)
    assert isinstance(require(roles=("admin",)), Policy)
