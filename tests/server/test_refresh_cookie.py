"""SPA refresh-cookie mode over HTTP: ``--refresh-cookie`` and ``refresh_cookie=true``.

The refresh token travels only as ``__Secure-keyturn_refresh`` (``HttpOnly; Secure;
SameSite=Strict; Path=<prefix>/oauth/token``); a cookie-borne refresh needs the
double-submit proof ``refresh_csrf`` in ``X-CSRF-Token`` and must not come from
another site. Rotation, the grace window and reuse detection work as in the body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from tests.server.token_support import (
    BASE,
    EMAIL,
    PASSWORD,
    MakeClient,
    bearer,
    build_app,
    clock,
    keyturn_of,
    password_grant,
    whoami_status,
)
from tests.support import set_cookies

from keyturn.clock import FrozenClock
from keyturn.csrf import refresh_csrf_token
from keyturn.web.authn.cookies import REFRESH_COOKIE

__all__ = ["build_app", "clock"]

SPA = "https://spa.example"
COOKIE_ATTRIBUTES = {"httponly", "max-age", "path", "samesite", "secure"}


@pytest.fixture
def spa_app(build_app: Callable[..., FastAPI], sqlite_url: str) -> FastAPI:
    """A SQLite app in refresh-cookie mode that lets ``SPA`` call it."""
    return build_app(sqlite_url, refresh_cookie=True, cors_origins=[SPA])


async def open_registered(
    make_client: MakeClient, app: FastAPI
) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(app=app, base_url=BASE) as opened:
        response = await opened.post("/auth/register", json={"email": EMAIL, "password": PASSWORD})
        assert response.status_code == 201, response.text
        yield opened


@pytest.fixture
async def client(make_client: MakeClient, spa_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A started refresh-cookie app with one account; the client keeps cookies."""
    async for opened in open_registered(make_client, spa_app):
        yield opened


async def cookie_grant(client: httpx.AsyncClient, **extra: Any) -> httpx.Response:
    """A password grant asking for the refresh cookie."""
    response = await password_grant(client, refresh_cookie="true", **extra)
    assert response.status_code == 200, response.text
    return response


def refresh_cookie(response: httpx.Response) -> tuple[str, dict[str, str]]:
    """The refresh cookie a response sets: value and attributes."""
    cookies = set_cookies(response)
    assert REFRESH_COOKIE in cookies, response.headers.get_list("set-cookie")
    return cookies[REFRESH_COOKIE]


def assert_cleared(response: httpx.Response) -> None:
    """The response deletes the refresh cookie: ``Max-Age=0`` with the cookie's own
    attributes (a cookie is only replaced by one with the same name and Path)."""
    value, attributes = refresh_cookie(response)
    assert value in ("", '""')
    assert set(attributes) == COOKIE_ATTRIBUTES
    assert attributes["max-age"] == "0" and attributes["path"] == "/oauth/token"


async def cookie_refresh(
    client: httpx.AsyncClient,
    proof: str | None,
    *,
    token: str | None = None,
    origin: str | None = BASE,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """``grant_type=refresh_token`` with no ``refresh_token`` in the body: the cookie
    from the client's jar (or ``token`` as the only cookie), ``proof`` as
    ``X-CSRF-Token``, sent from ``origin``."""
    sent = dict(headers or {})
    if proof is not None:
        sent["X-CSRF-Token"] = proof
    if origin is not None:
        sent["Origin"] = origin
    if token is not None:
        sent["Cookie"] = f"{REFRESH_COOKIE}={token}"
    return await client.post("/oauth/token", data={"grant_type": "refresh_token"}, headers=sent)


# --- issue -------------------------------------------------------------------------------


async def test_password_grant_puts_the_refresh_token_in_a_strict_cookie(
    client: httpx.AsyncClient, spa_app: FastAPI
) -> None:
    """The cookie is HttpOnly, Secure, SameSite=Strict, scoped to the token endpoint,
    lives as long as the refresh token; the body has no refresh token, only its proof."""
    response = await cookie_grant(client)
    settings = keyturn_of(spa_app).settings
    value, attributes = refresh_cookie(response)
    assert set(attributes) == COOKIE_ATTRIBUTES  # no Domain, no Expires
    assert attributes["path"] == "/oauth/token"
    assert attributes["samesite"].lower() == "strict"
    assert attributes["max-age"] == str(settings.refresh_token_ttl)
    assert value.startswith("ktr_")
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope", "refresh_csrf"}
    assert value not in response.text
    assert body["refresh_csrf"] == refresh_csrf_token(value)
    assert response.headers["cache-control"] == "no-store"
    assert await whoami_status(client, body["access_token"]) == 200


async def test_without_the_opt_in_the_answer_is_the_plain_body(client: httpx.AsyncClient) -> None:
    """The server setting alone changes nothing: no cookie unless the request asks."""
    response = await password_grant(client)
    assert response.status_code == 200
    assert "refresh_token" in response.json()
    assert REFRESH_COOKIE not in set_cookies(response)


@pytest.mark.parametrize("value", ["yes", "1", "TRUE"])
async def test_refresh_cookie_field_takes_true_or_false_only(
    client: httpx.AsyncClient, value: str
) -> None:
    """A malformed opt-in is invalid_request, not silently a body answer."""
    response = await password_grant(client, refresh_cookie=value)
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


async def test_servers_without_the_setting_refuse_the_opt_in_and_ignore_the_cookie(
    make_client: MakeClient, build_app: Callable[..., FastAPI], sqlite_url: str
) -> None:
    """Default off: ``refresh_cookie=true`` is invalid_request, and a refresh cookie
    (say, planted) is never read: the body's refresh_token is required."""
    async for opened in open_registered(make_client, build_app(sqlite_url)):
        asked = await password_grant(opened, refresh_cookie="true")
        assert asked.status_code == 400 and asked.json()["error"] == "invalid_request"
        token = (await password_grant(opened)).json()["refresh_token"]
        response = await cookie_refresh(opened, refresh_csrf_token(token), token=token)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_request"
        assert "refresh_token" in response.json()["error_description"]


# --- refresh -----------------------------------------------------------------------------


async def test_refresh_with_cookie_and_proof_rotates_the_cookie(
    make_client: MakeClient,
    build_app: Callable[..., FastAPI],
    database_url: str,
) -> None:
    """Cookie + X-CSRF-Token: a new access token, a new cookie (the old value is
    spent), a new proof; still no refresh token in the body. SQLite and PostgreSQL."""
    app = build_app(database_url, refresh_cookie=True)
    async for client in open_registered(make_client, app):
        first = await cookie_grant(client)
        old_value, _ = refresh_cookie(first)
        response = await cookie_refresh(client, first.json()["refresh_csrf"])
        assert response.status_code == 200, response.text
        new_value, attributes = refresh_cookie(response)
        assert new_value != old_value and attributes["path"] == "/oauth/token"
        assert attributes["max-age"] == str(keyturn_of(app).settings.refresh_token_ttl)
        body = response.json()
        assert "refresh_token" not in body and new_value not in response.text
        assert body["refresh_csrf"] == refresh_csrf_token(new_value) != first.json()["refresh_csrf"]
        assert await whoami_status(client, body["access_token"]) == 200
        # The jar now holds the successor, and the next refresh uses it.
        again = await cookie_refresh(client, body["refresh_csrf"])
        assert again.status_code == 200, again.text


async def test_cookie_max_age_is_capped_by_the_family(
    make_client: MakeClient,
    build_app: Callable[..., FastAPI],
    sqlite_url: str,
    clock: FrozenClock,
) -> None:
    """With refresh_token_ttl == refresh_max_age, a refresh 100 s before the family's
    end sets Max-Age=100, not the full TTL."""
    day = 86_400
    app = build_app(sqlite_url, refresh_cookie=True, refresh_token_ttl=day, refresh_max_age=day)
    async for client in open_registered(make_client, app):
        first = await cookie_grant(client)
        clock.advance(day - 100)
        response = await cookie_refresh(client, first.json()["refresh_csrf"])
        assert response.status_code == 200, response.text
        _, attributes = refresh_cookie(response)
        assert attributes["max-age"] == "100"


async def test_refresh_without_proof_is_csrf_failed_and_spends_nothing(
    client: httpx.AsyncClient,
) -> None:
    """No X-CSRF-Token, an empty one, the proof of another token, or the raw token
    itself: 403 csrf_failed, no Set-Cookie, and the cookie still works afterwards."""
    first = await cookie_grant(client)
    other = await cookie_grant(client)  # the jar now holds the second sign-in's cookie
    current, _ = refresh_cookie(other)
    for proof in (None, "", first.json()["refresh_csrf"], current):
        response = await cookie_refresh(client, proof)
        assert response.status_code == 403, (proof, response.text)
        assert response.json()["error"] == "csrf_failed"
        assert response.headers["cache-control"] == "no-store"
        assert "set-cookie" not in response.headers
    response = await cookie_refresh(client, other.json()["refresh_csrf"])
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "https://spa.example.evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
async def test_cross_site_refresh_is_refused_even_with_the_proof(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    """An unlisted, null or look-alike Origin, or Sec-Fetch-Site: cross-site: 403
    csrf_failed before the cookie is spent."""
    first = await cookie_grant(client)
    proof = first.json()["refresh_csrf"]
    response = await cookie_refresh(client, proof, origin=None, headers=headers)
    assert response.status_code == 403 and response.json()["error"] == "csrf_failed"
    assert (await cookie_refresh(client, proof)).status_code == 200


async def test_a_listed_cors_origin_may_refresh_with_the_cookie(client: httpx.AsyncClient) -> None:
    """The SPA's own origin (in cors_origins) passes the origin half."""
    first = await cookie_grant(client)
    response = await cookie_refresh(
        client, first.json()["refresh_csrf"], origin=SPA, headers={"Sec-Fetch-Site": "same-site"}
    )
    assert response.status_code == 200, response.text


async def test_no_cookie_and_no_body_token_is_invalid_request(client: httpx.AsyncClient) -> None:
    """Nothing to refresh with: the usual invalid_request naming refresh_token."""
    response = await cookie_refresh(client, "whatever")
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


async def test_a_body_refresh_token_wins_over_the_cookie(client: httpx.AsyncClient) -> None:
    """A native client's body token is used as sent, and answered in the body."""
    await cookie_grant(client)  # a cookie sits in the jar
    plain = (await password_grant(client)).json()
    response = await client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": plain["refresh_token"]},
    )
    assert response.status_code == 200, response.text
    assert "refresh_token" in response.json()
    assert REFRESH_COOKIE not in set_cookies(response)


async def test_a_body_refresh_can_move_into_the_cookie(client: httpx.AsyncClient) -> None:
    """``refresh_cookie=true`` on a body refresh answers in cookie mode."""
    plain = (await password_grant(client)).json()
    response = await client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": plain["refresh_token"],
            "refresh_cookie": "true",
        },
    )
    assert response.status_code == 200, response.text
    value, _ = refresh_cookie(response)
    assert "refresh_token" not in response.json()
    assert response.json()["refresh_csrf"] == refresh_csrf_token(value)


# --- grace window and reuse ----------------------------------------------------------------


async def test_parallel_tabs_inside_the_grace_window_get_the_same_cookie(
    client: httpx.AsyncClient,
) -> None:
    """Two tabs refreshing with the same cookie at once both continue: same new
    cookie, same new access token."""
    first = await cookie_grant(client)
    old_value, _ = refresh_cookie(first)
    proof = first.json()["refresh_csrf"]
    one = await cookie_refresh(client, proof, token=old_value)
    two = await cookie_refresh(client, proof, token=old_value)
    assert one.status_code == two.status_code == 200, (one.text, two.text)
    assert refresh_cookie(one)[0] == refresh_cookie(two)[0]
    assert one.json()["access_token"] == two.json()["access_token"]


async def test_reusing_an_old_cookie_revokes_the_family_and_clears_it(
    client: httpx.AsyncClient, spa_app: FastAPI, clock: FrozenClock
) -> None:
    """R1 -> R2 by cookie; R1 again after the grace window: invalid_grant, the cookie
    is cleared, and R2 and the family's access tokens are dead too."""
    first = await cookie_grant(client)
    old_value, _ = refresh_cookie(first)
    old_proof = first.json()["refresh_csrf"]
    rotated = await cookie_refresh(client, old_proof)
    assert rotated.status_code == 200
    new_value, _ = refresh_cookie(rotated)
    access = rotated.json()["access_token"]
    clock.advance(keyturn_of(spa_app).settings.refresh_grace + 1)

    replay = await cookie_refresh(client, old_proof, token=old_value)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    assert_cleared(replay)

    current = await cookie_refresh(client, rotated.json()["refresh_csrf"], token=new_value)
    assert current.status_code == 400 and current.json()["error"] == "invalid_grant"
    assert await whoami_status(client, access) == 401


# --- sign-out ------------------------------------------------------------------------------


async def test_revoke_with_the_opt_in_ends_the_family_and_clears_the_cookie(
    client: httpx.AsyncClient,
) -> None:
    """An SPA signs out through /oauth/revoke with its access token and
    ``refresh_cookie=true``: 200, the cookie cleared (same Path), the family dead."""
    first = await cookie_grant(client)
    value, _ = refresh_cookie(first)
    body = first.json()
    response = await client.post(
        "/oauth/revoke", data={"token": body["access_token"], "refresh_cookie": "true"}
    )
    assert response.status_code == 200
    assert_cleared(response)
    assert await whoami_status(client, body["access_token"]) == 401
    after = await cookie_refresh(client, body["refresh_csrf"], token=value)
    assert after.status_code == 400 and after.json()["error"] == "invalid_grant"


async def test_sign_out_through_revoke_leaves_another_clients_family_alone(
    client: httpx.AsyncClient, spa_app: FastAPI
) -> None:
    """``refresh_cookie=true`` with a token issued to another client (here: to no
    client, presented by a public client) ends neither the token nor its family
    (#10 item 4)."""
    spa = await keyturn_of(spa_app).clients.add(
        "other spa", grant_types=["password", "refresh_token"]
    )
    first = await cookie_grant(client)
    value, _ = refresh_cookie(first)
    body = first.json()
    response = await client.post(
        "/oauth/revoke",
        data={"token": body["access_token"], "refresh_cookie": "true", "client_id": spa.client.id},
    )
    assert response.status_code == 200
    assert await whoami_status(client, body["access_token"]) == 200
    assert (await cookie_refresh(client, body["refresh_csrf"], token=value)).status_code == 200


async def test_revoke_without_the_opt_in_leaves_the_cookie_alone(client: httpx.AsyncClient) -> None:
    """Plain RFC 7009: revoking an access token does not touch the cookie or family."""
    first = await cookie_grant(client)
    body = first.json()
    response = await client.post("/oauth/revoke", data={"token": body["access_token"]})
    assert response.status_code == 200
    assert REFRESH_COOKIE not in set_cookies(response)
    assert (await cookie_refresh(client, body["refresh_csrf"])).status_code == 200


async def test_bearer_logout_clears_the_cookie_and_ends_the_family(
    client: httpx.AsyncClient,
) -> None:
    """POST /auth/logout with the access token: 204, the refresh cookie cleared
    with the same Path, and the family is over."""
    first = await cookie_grant(client)
    value, _ = refresh_cookie(first)
    body = first.json()
    response = await client.post("/auth/logout", headers=bearer(body["access_token"]))
    assert response.status_code == 204, response.text
    assert_cleared(response)
    after = await cookie_refresh(client, body["refresh_csrf"], token=value)
    assert after.status_code == 400 and after.json()["error"] == "invalid_grant"


# --- under a prefix ------------------------------------------------------------------------


async def test_the_cookie_path_follows_a_mount_prefix(spa_app: FastAPI) -> None:
    """keyturn mounted at /id: the cookie is scoped to /id/oauth/token, and the
    client sends it back there."""
    host = FastAPI()
    host.mount("/id", spa_app)
    async with (
        spa_app.router.lifespan_context(spa_app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=host), base_url=BASE) as client,
    ):
        registered = await client.post(
            "/id/auth/register", json={"email": EMAIL, "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text
        first = await client.post(
            "/id/oauth/token",
            data={
                "grant_type": "password",
                "username": EMAIL,
                "password": PASSWORD,
                "refresh_cookie": "true",
            },
        )
        assert first.status_code == 200, first.text
        assert refresh_cookie(first)[1]["path"] == "/id/oauth/token"
        response = await client.post(
            "/id/oauth/token",
            data={"grant_type": "refresh_token"},
            headers={"X-CSRF-Token": first.json()["refresh_csrf"], "Origin": BASE},
        )
        assert response.status_code == 200, response.text
        assert refresh_cookie(response)[1]["path"] == "/id/oauth/token"


# --- only the server's own site sets or clears the cookie (#10 item 5) -----------------------

CROSS_SITE = [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}]


@pytest.mark.parametrize("headers", CROSS_SITE, ids=["origin", "sec-fetch-site"])
async def test_a_cross_site_grant_cannot_plant_a_refresh_cookie(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    """A password grant or a body refresh with ``refresh_cookie=true`` from another
    site is 403 csrf_failed and sets no cookie: an attacker's page cannot sign the
    victim's browser in to the attacker's account (#10 item 5)."""
    planted = await password_grant(client, refresh_cookie="true", headers=headers)
    assert planted.status_code == 403, planted.text
    assert planted.json()["error"] == "csrf_failed"
    assert REFRESH_COOKIE not in set_cookies(planted)
    assert "access_token" not in planted.json()

    plain = (await password_grant(client)).json()
    moved = await client.post(
        "/oauth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": plain["refresh_token"],
            "refresh_cookie": "true",
        },
        headers=headers,
    )
    assert moved.status_code == 403 and moved.json()["error"] == "csrf_failed"
    assert REFRESH_COOKIE not in set_cookies(moved)
    # Not spent: the body token still refreshes.
    again = await client.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": plain["refresh_token"]},
    )
    assert again.status_code == 200, again.text


async def test_the_own_site_and_a_listed_origin_still_get_the_cookie(
    client: httpx.AsyncClient,
) -> None:
    """Same-origin, a listed CORS origin and a non-browser client (no Origin) keep
    working with ``refresh_cookie=true`` (#10 item 5)."""
    for headers in (
        {"Origin": BASE, "Sec-Fetch-Site": "same-origin"},
        {"Origin": SPA, "Sec-Fetch-Site": "same-site"},
        {},
    ):
        response = await password_grant(client, refresh_cookie="true", headers=headers)
        assert response.status_code == 200, (headers, response.text)
        refresh_cookie(response)


@pytest.mark.parametrize("headers", CROSS_SITE, ids=["origin", "sec-fetch-site"])
async def test_a_cross_site_revoke_cannot_clear_the_cookie(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    """``/oauth/revoke`` with ``refresh_cookie=true`` from another site is 403
    csrf_failed: no cleared cookie (forced sign-out), nothing revoked (#10 item 5)."""
    first = await cookie_grant(client)
    body = first.json()
    response = await client.post(
        "/oauth/revoke",
        data={"token": body["access_token"], "refresh_cookie": "true"},
        headers=headers,
    )
    assert response.status_code == 403 and response.json()["error"] == "csrf_failed"
    assert REFRESH_COOKIE not in set_cookies(response)
    assert await whoami_status(client, body["access_token"]) == 200
    assert (await cookie_refresh(client, body["refresh_csrf"])).status_code == 200


@pytest.mark.parametrize("headers", CROSS_SITE, ids=["origin", "sec-fetch-site"])
async def test_a_cross_site_bearer_logout_cannot_clear_the_cookie(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    """``/auth/logout`` with a bearer token on a refresh-cookie server, from another
    site: 403 csrf_failed, the cookie kept and the family alive (#10 item 5)."""
    first = await cookie_grant(client)
    body = first.json()
    response = await client.post(
        "/auth/logout", headers={**bearer(body["access_token"]), **headers}
    )
    assert response.status_code == 403 and response.json()["error"] == "csrf_failed"
    assert REFRESH_COOKIE not in set_cookies(response)
    assert await whoami_status(client, body["access_token"]) == 200
    assert (await cookie_refresh(client, body["refresh_csrf"])).status_code == 200
