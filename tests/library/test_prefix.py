"""keyturn installed under a prefix ("/id") in a host app: the HTML sign-in flow,
the JSON API and the OAuth endpoints all live under it, and every link, form
action, redirect and CSRF exemption follows."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
from fastapi import FastAPI
from tests.library.conftest import PASSWORD, Host, Serve, sign_up
from tests.server.http_support import set_cookies

from keyturn import Keyturn
from keyturn.web import CurrentPrincipal
from keyturn.web.authn.cookies import SESSION_COOKIE

PREFIX = "/id"


def prefixed_app(host: Callable[..., tuple[FastAPI, Keyturn]]) -> FastAPI:
    app, _ = host(PREFIX)

    @app.get("/me")
    async def me(principal: CurrentPrincipal) -> dict[str, str]:
        return {"email": principal.email, "via": principal.via}

    return app


def form_token(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def urls(html: str) -> set[str]:
    """Every ``action``, ``href`` and ``src`` in a page."""
    return set(re.findall(r'(?:action|href|src)="([^"]*)"', html))


async def test_the_sign_in_pages_work_under_the_prefix(host: Host, serve: Serve) -> None:
    """Register, land on the account page, sign out, sign in again: all under
    /id, with every link and form pointing under /id."""
    async with serve(prefixed_app(host)) as client:
        account = await client.get(f"{PREFIX}/account")
        assert account.status_code == 303
        assert account.headers["location"] == f"{PREFIX}/login?next={PREFIX}/account"

        page = await client.get(f"{PREFIX}/register")
        assert page.status_code == 200
        assert {f"{PREFIX}/register", f"{PREFIX}/login", f"{PREFIX}/static/keyturn.css"} <= urls(
            page.text
        )
        assert all(url.startswith(PREFIX) for url in urls(page.text)), urls(page.text)
        assert (await client.get(f"{PREFIX}/static/keyturn.css")).status_code == 200

        registered = await client.post(
            f"{PREFIX}/register",
            data={
                "email": "ada@example.com",
                "password": PASSWORD,
                "csrf_token": form_token(page.text),
            },
        )
        assert registered.status_code == 303, registered.text
        assert registered.headers["location"] == f"{PREFIX}/account"
        cookie = set_cookies(registered)[SESSION_COOKIE]
        assert cookie[1]["path"] == "/"  # a __Host- cookie: the host app's routes see it too

        account = await client.get(f"{PREFIX}/account")
        assert account.status_code == 200
        assert "ada@example.com" in account.text
        assert f"{PREFIX}/logout" in urls(account.text)
        assert f"{PREFIX}/account/sign-out-others" in urls(account.text)
        assert all(url.startswith(PREFIX) for url in urls(account.text)), urls(account.text)
        assert (await client.get("/me")).json() == {"email": "ada@example.com", "via": "session"}

        logout = await client.post(
            f"{PREFIX}/logout", data={"csrf_token": form_token(account.text)}
        )
        assert logout.status_code == 303
        assert logout.headers["location"] == f"{PREFIX}/login"
        assert (await client.get("/me")).status_code == 401

        page = await client.get(f"{PREFIX}/login", params={"next": f"{PREFIX}/account"})
        assert f"{PREFIX}/login" in urls(page.text)
        signed_in = await client.post(
            f"{PREFIX}/login",
            data={
                "email": "ada@example.com",
                "password": PASSWORD,
                "csrf_token": form_token(page.text),
                "next": f"{PREFIX}/account",
            },
        )
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == f"{PREFIX}/account"
        assert (await client.get(f"{PREFIX}/account")).status_code == 200


async def test_the_json_and_oauth_api_work_under_the_prefix(host: Host, serve: Serve) -> None:
    """/id/auth/*, /id/oauth/token and discovery answer; the root paths do not."""
    async with serve(prefixed_app(host)) as client:
        csrf = await sign_up(client, prefix=PREFIX)
        whoami = await client.get(f"{PREFIX}/auth/whoami")
        assert whoami.status_code == 200
        assert whoami.json()["via"] == "session"
        assert whoami.headers["cache-control"] == "no-store"

        # Signing in again and the token endpoint stay CSRF-exempt with a cookie present.
        again = await client.post(
            f"{PREFIX}/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
        )
        assert again.status_code == 200, again.text
        csrf = again.json()["csrf_token"]
        grant = await client.post(
            f"{PREFIX}/oauth/token",
            data={"grant_type": "password", "username": "ada@example.com", "password": PASSWORD},
        )
        assert grant.status_code == 200, grant.text
        token = grant.json()["access_token"]

        # ...while the other cookie-authenticated unsafe requests need the CSRF token.
        assert (await client.post(f"{PREFIX}/auth/token")).status_code == 403
        minted = await client.post(f"{PREFIX}/auth/token", headers={"X-CSRF-Token": csrf})
        assert minted.status_code == 200

        bearer = httpx.Headers({"Authorization": f"Bearer {token}"})
        client.cookies.clear()
        assert (await client.get("/me", headers=bearer)).json()["via"] == "token"
        sessions = await client.get(f"{PREFIX}/auth/sessions", headers=bearer)
        assert sessions.status_code == 200
        assert {row["kind"] for row in sessions.json()} == {"browser", "token"}

        jwks = await client.get(f"{PREFIX}/.well-known/jwks.json")
        assert jwks.status_code == 200 and jwks.json()["keys"]
        metadata = (await client.get(f"{PREFIX}/.well-known/oauth-authorization-server")).json()
        assert metadata["token_endpoint"].endswith(f"{PREFIX}/oauth/token")
        assert metadata["jwks_uri"].endswith(f"{PREFIX}/.well-known/jwks.json")

        for path in ("/auth/whoami", "/login", "/oauth/token", "/.well-known/jwks.json"):
            response = await client.get(path)
            assert response.status_code in (404, 405), path
        assert (await client.post(f"{PREFIX}/auth/logout", headers=bearer)).status_code == 204
        assert (await client.get("/me", headers=bearer)).status_code == 401


async def test_a_prefix_is_normalized(host: Host, serve: Serve) -> None:
    """ "id/" and "/id" mean the same mount point."""
    app, _ = host("id/")
    async with serve(app) as client:
        assert (await client.get("/id/login")).status_code == 200
