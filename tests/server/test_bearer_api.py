"""Bearer tokens on the JSON auth API (SPEC "JSON auth API", bearer rows), and
``POST /auth/token`` (a cookie session's short access token)."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from fastapi import FastAPI
from tests.server.token_support import (
    EMAIL,
    NEW_PASSWORD,
    OTHER_EMAIL,
    PASSWORD,
    Browser,
    app,
    bearer,
    browser,
    build_app,
    client,
    clock,
    keyturn_of,
    login,
    password_grant,
    refresh,
    tokens,
    whoami_status,
)

from keyturn.clock import isoformat

__all__ = ["app", "browser", "build_app", "client", "clock"]

INVALID_TOKEN = 'Bearer error="invalid_token"'


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# --- whoami and how the token travels -------------------------------------------------------


async def test_whoami_with_a_bearer_token(client: httpx.AsyncClient, app: FastAPI) -> None:
    """via "token", session_id is the token's sid, expires_at its exp; no CSRF header."""
    pair = await tokens(client)
    response = await client.get("/auth/whoami", headers=bearer(pair["access_token"]))
    assert response.status_code == 200
    claims = keyturn_of(app).token_verifier.verify(pair["access_token"])
    body = response.json()
    assert body["via"] == "token" and body["email"] == EMAIL
    assert body["session_id"] == claims.sid
    assert body["expires_at"] == isoformat(claims.exp)
    assert "x-csrf-token" not in response.headers


async def test_bearer_wins_over_a_cookie(client: httpx.AsyncClient) -> None:
    """With both, only the bearer token counts: another user's cookie is ignored, and
    a bad token with a good cookie is 401 invalid_token."""
    await login(client, OTHER_EMAIL)
    pair = await tokens(client)
    response = await client.get("/auth/whoami", headers=bearer(pair["access_token"]))
    assert response.json()["email"] == EMAIL
    response = await client.get("/auth/whoami", headers=bearer("not-a-token"))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == INVALID_TOKEN


async def test_query_string_tokens_are_never_accepted(client: httpx.AsyncClient) -> None:
    """?access_token= alone is 401 invalid_token; with a header it is 400."""
    pair = await tokens(client)
    response = await client.get("/auth/whoami", params={"access_token": pair["access_token"]})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == INVALID_TOKEN
    response = await client.get(
        "/auth/whoami",
        params={"access_token": pair["access_token"]},
        headers=bearer(pair["access_token"]),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_a_token_sent_in_the_query_is_revoked(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """A valid access token in the query string has leaked (URLs are logged):
    refused, and revoked, so the same token as a header is 401 afterwards; the
    rest of the sign-in (another token of the family) is untouched (#10 item 9)."""
    pair = await tokens(client)
    other = (await refresh(client, pair["refresh_token"])).json()["access_token"]
    assert await whoami_status(client, pair["access_token"]) == 200
    exposed = await client.get("/auth/whoami", params={"access_token": pair["access_token"]})
    assert exposed.status_code == 401
    assert await whoami_status(client, pair["access_token"]) == 401
    assert await whoami_status(client, other) == 200
    keyturn = keyturn_of(app)
    jti = keyturn.token_verifier.verify(pair["access_token"]).jti
    stored = await keyturn.storage.revocations.changes(
        after_seq=0, since=0.0, now=keyturn.clock.now()
    )
    assert ("jti", jti) in {(entry.kind, entry.value) for entry in stored}  # for every instance


async def test_a_query_token_next_to_a_header_is_revoked_too(client: httpx.AsyncClient) -> None:
    """The 400 for a token in two places still revokes the one in the URL (#10 item 9)."""
    pair = await tokens(client)
    response = await client.get(
        "/auth/whoami",
        params={"access_token": pair["access_token"]},
        headers=bearer(pair["access_token"]),
    )
    assert response.status_code == 400
    assert await whoami_status(client, pair["access_token"]) == 401


async def test_garbage_in_the_query_revokes_nothing(client: httpx.AsyncClient) -> None:
    """A forged or malformed query token is just refused (#10 item 9)."""
    pair = await tokens(client)
    token = pair["access_token"]
    forged = token[:-4] + ("BBBB" if token.endswith("AAAA") else "AAAA")
    for value in ("garbage", forged, ""):
        response = await client.get("/auth/whoami", params={"access_token": value})
        assert response.status_code == 401
    assert await whoami_status(client, pair["access_token"]) == 200


GARBAGE = [
    "",
    "garbage",
    "a.b.c",
    "a.b.c.d.e",
    "a.b",
    b64({"alg": "none", "typ": "at+jwt"}) + "." + b64({"sub": "x"}) + ".",
    b64({"alg": "ES256", "typ": "at+jwt", "kid": "../../etc/passwd"}) + ".e30.AAAA",
    b64({"alg": "HS256", "typ": "at+jwt", "kid": "' OR 1=1--"}) + ".e30.AAAA",
    "ktr_" + "A" * 43,
    "é" * 10,
]


@pytest.mark.parametrize("token", GARBAGE)
async def test_garbage_tokens_get_one_identical_401(client: httpx.AsyncClient, token: str) -> None:
    """Every refused token: the same 401 body and WWW-Authenticate: Bearer error="invalid_token"."""
    reference = await client.get("/auth/whoami", headers=bearer("reference-garbage"))
    headers = {"Authorization": f"Bearer {token}".encode()}
    response = await client.get("/auth/whoami", headers=headers)  # type: ignore[arg-type]
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == INVALID_TOKEN
    assert response.content == reference.content
    assert response.json()["error"] == "invalid_token"


async def test_a_64_kb_authorization_header_is_never_5xx(client: httpx.AsyncClient) -> None:
    """A 64 KB token header is refused with a 4xx."""
    response = await client.get("/auth/whoami", headers=bearer("a" * 65_536))
    assert 400 <= response.status_code < 500


async def test_two_authorization_headers_are_refused(client: httpx.AsyncClient) -> None:
    """Two Authorization headers, one valid, authenticate nothing."""
    pair = await tokens(client)
    headers = [
        ("Authorization", f"Bearer {pair['access_token']}"),
        ("Authorization", "Bearer x"),
    ]
    response = await client.get("/auth/whoami", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == INVALID_TOKEN


# --- sign-outs ------------------------------------------------------------------------------


async def test_logout_with_a_token_ends_it_and_its_family(client: httpx.AsyncClient) -> None:
    """POST /auth/logout with a bearer token (no CSRF needed): 204; the token and its
    refresh token are dead, another family of the user lives on."""
    mine, other = await tokens(client), await tokens(client)
    response = await client.post("/auth/logout", headers=bearer(mine["access_token"]))
    assert response.status_code == 204
    assert "set-cookie" not in response.headers
    assert await whoami_status(client, mine["access_token"]) == 401
    assert (await refresh(client, mine["refresh_token"])).status_code == 400
    assert await whoami_status(client, other["access_token"]) == 200


async def test_logout_all_with_a_token_ends_everything_of_the_caller(
    client: httpx.AsyncClient, browser: Browser
) -> None:
    """logout-all by token: every session, family and access token of the caller
    ends; another user's do not."""
    async with browser() as web:
        await login(web)
        mine, other_user = await tokens(client), await tokens(client, OTHER_EMAIL)
        spare = await tokens(client)
        response = await client.post("/auth/logout-all", headers=bearer(mine["access_token"]))
        assert response.status_code == 204
        assert (await web.get("/auth/whoami")).status_code == 401
        for pair in (mine, spare):
            assert await whoami_status(client, pair["access_token"]) == 401
            assert (await refresh(client, pair["refresh_token"])).status_code == 400
        assert await whoami_status(client, other_user["access_token"]) == 200


async def test_cookie_logout_all_ends_token_sign_ins_too(client: httpx.AsyncClient) -> None:
    """logout-all with the cookie (and CSRF) also kills the user's tokens."""
    pair = await tokens(client)
    csrf = await login(client)
    response = await client.post("/auth/logout-all", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 204
    assert await whoami_status(client, pair["access_token"]) == 401
    assert (await refresh(client, pair["refresh_token"])).status_code == 400


# --- the sign-ins list ------------------------------------------------------------------------


async def test_sessions_list_shows_browser_and_token_sign_ins(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """Both kinds are listed with the same fields; current marks the caller's sid for
    token and cookie callers alike."""
    await login(client)
    pair = await tokens(client)
    sid = keyturn_of(app).token_verifier.verify(pair["access_token"]).sid
    by_token = (await client.get("/auth/sessions", headers=bearer(pair["access_token"]))).json()
    assert sorted(row["kind"] for row in by_token) == ["browser", "token"]
    fields = {"id", "kind", "created_at", "last_seen_at", "expires_at", "ip", "user_agent"}
    assert all(set(row) == fields | {"current"} for row in by_token)
    assert [row["id"] for row in by_token if row["current"]] == [sid]
    by_cookie = (await client.get("/auth/sessions")).json()
    current = [row for row in by_cookie if row["current"]]
    assert len(current) == 1 and current[0]["kind"] == "browser"


async def test_deleting_a_family_by_id(client: httpx.AsyncClient, app: FastAPI) -> None:
    """DELETE /auth/sessions/{family id}: 204 and the family is dead; another user's
    family or an unknown id is 404."""
    mine, spare = await tokens(client), await tokens(client)
    theirs = await tokens(client, OTHER_EMAIL)
    verify = keyturn_of(app).token_verifier.verify
    spare_sid, their_sid = verify(spare["access_token"]).sid, verify(theirs["access_token"]).sid
    auth = bearer(mine["access_token"])
    assert (await client.delete(f"/auth/sessions/{their_sid}", headers=auth)).status_code == 404
    assert (await client.delete("/auth/sessions/nope", headers=auth)).status_code == 404
    assert (await client.delete(f"/auth/sessions/{spare_sid}", headers=auth)).status_code == 204
    assert await whoami_status(client, spare["access_token"]) == 401
    assert (await refresh(client, spare["refresh_token"])).status_code == 400
    assert await whoami_status(client, theirs["access_token"]) == 200


# --- password change --------------------------------------------------------------------------


async def test_password_change_with_a_token(client: httpx.AsyncClient, browser: Browser) -> None:
    """By token: a wrong current password is 401; the right one is 204, ends every
    browser session and every other family, keeps the caller's."""
    async with browser() as web:
        await login(web)
        mine, spare = await tokens(client), await tokens(client)
        auth = bearer(mine["access_token"])
        wrong = await client.post(
            "/auth/password",
            json={"current_password": "not it at all", "new_password": NEW_PASSWORD},
            headers=auth,
        )
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_credentials"
        response = await client.post(
            "/auth/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers=auth,
        )
        assert response.status_code == 204
        assert (await web.get("/auth/whoami")).status_code == 401
        assert await whoami_status(client, spare["access_token"]) == 401
        assert (await refresh(client, spare["refresh_token"])).status_code == 400
        assert await whoami_status(client, mine["access_token"]) == 200
        assert (await refresh(client, mine["refresh_token"])).status_code == 200
        assert (await password_grant(client)).status_code == 400
        assert (await password_grant(client, password=NEW_PASSWORD)).status_code == 200


async def test_password_change_with_the_cookie_ends_tokens(client: httpx.AsyncClient) -> None:
    """By cookie: every family and access token of the user ends too."""
    pair = await tokens(client)
    csrf = await login(client)
    response = await client.post(
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers={"X-CSRF-Token": csrf},
    )
    assert response.status_code == 204
    assert await whoami_status(client, pair["access_token"]) == 401
    assert (await refresh(client, pair["refresh_token"])).status_code == 400


# --- POST /auth/token ----------------------------------------------------------------------


async def test_session_token_is_bound_to_the_session(client: httpx.AsyncClient) -> None:
    """Cookie + CSRF: a short token with no refresh token, sid = the session's id; it
    dies when the session signs out."""
    csrf = await login(client)
    session_id = (await client.get("/auth/whoami")).json()["session_id"]
    response = await client.post("/auth/token", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer" and 0 < body["expires_in"] <= 900
    who = await client.get("/auth/whoami", headers=bearer(body["access_token"]))
    assert who.json()["via"] == "token" and who.json()["session_id"] == session_id
    assert (await client.post("/auth/logout", headers={"X-CSRF-Token": csrf})).status_code == 204
    assert await whoami_status(client, body["access_token"]) == 401


async def test_session_token_needs_csrf_and_a_cookie(client: httpx.AsyncClient) -> None:
    """Without the CSRF token: 403 csrf_failed; with a bearer token instead: 403;
    with nothing: 401."""
    await login(client)
    response = await client.post("/auth/token")
    assert response.status_code == 403 and response.json()["error"] == "csrf_failed"
    pair = await tokens(client)
    assert (
        await client.post("/auth/token", headers=bearer(pair["access_token"]))
    ).status_code == 403
    client.cookies.clear()
    assert (await client.post("/auth/token")).status_code == 401
