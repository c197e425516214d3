"""The JSON session API (SPEC "JSON auth API", "Sessions"), on SQLite and PostgreSQL.

Every test runs against a real database: a migrated SQLite file and a migrated
database on the test PostgreSQL server. Clients talk to ``https://testserver``
because the session cookie is ``Secure`` (httpx only sends it over https).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import httpx
import pytest
from fastapi import FastAPI
from tests.server.http_support import BASE
from tests.support import set_cookies

from keyturn.errors import StoreUnavailable
from keyturn.runtime import Keyturn
from keyturn.settings import Settings
from keyturn.stores.memory import MemoryStorage
from keyturn.web.app import create_app
from keyturn.web.authn.cookies import SESSION_COOKIE

MakeClient = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]
Browser = Callable[[], AbstractAsyncContextManager[httpx.AsyncClient]]

PASSWORD = "correct horse battery staple"
NEW_PASSWORD = "another long passphrase here"
# Well-formed like a real secret (43 base64url characters), but never issued.
PLANTED = "A" * 43


# --- fixtures and helpers ---------------------------------------------------------------


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Default settings on the parametrized database."""
    return Settings(database_url=database_url)


@pytest.fixture
def app(settings: Settings, make_keyturn: Callable[..., Keyturn]) -> FastAPI:
    """The keyturn app on a Keyturn that opens its own SQL storage (cheap hasher)."""
    return create_app(settings, keyturn=make_keyturn(settings, storage=None))


@pytest.fixture
def browser(make_client: MakeClient, app: FastAPI) -> Browser:
    """``async with browser() as client``: one more browser (own cookie jar) on ``app``.

    The first one opened runs the app's lifespan; the others share the started app.
    """

    def open_browser() -> AbstractAsyncContextManager[httpx.AsyncClient]:
        return make_client(app=app, base_url=BASE)

    return open_browser


@pytest.fixture
async def client(browser: Browser) -> AsyncIterator[httpx.AsyncClient]:
    """The first browser, with the app started and one registered account."""
    async with browser() as opened:
        await register(opened)
        yield opened


async def register(
    client: httpx.AsyncClient, email: str = "a@example.com", password: str = PASSWORD
) -> httpx.Response:
    response = await client.post("/auth/register", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    return response


async def login(
    client: httpx.AsyncClient,
    email: str = "a@example.com",
    password: str = PASSWORD,
    **extra: object,
) -> str:
    """Sign in and return the CSRF token."""
    response = await client.post(
        "/auth/login", json={"email": email, "password": password, **extra}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["csrf_token"]
    return token


def session_secret(response: httpx.Response) -> str:
    value, _ = set_cookies(response)[SESSION_COOKIE]
    return value


def with_secret(secret: str) -> dict[str, str]:
    """Headers presenting ``secret`` as the only session cookie."""
    return {"Cookie": f"{SESSION_COOKIE}={secret}"}


async def status_with(client: httpx.AsyncClient, secret: str) -> int:
    """The status of ``GET /auth/whoami`` with ``secret`` as the session cookie."""
    return (await client.get("/auth/whoami", headers=with_secret(secret))).status_code


async def signed_in(client: httpx.AsyncClient, **extra: object) -> tuple[str, str]:
    """Sign in; return (session secret, CSRF token)."""
    response = await client.post(
        "/auth/login", json={"email": "a@example.com", "password": PASSWORD, **extra}
    )
    assert response.status_code == 200, response.text
    return session_secret(response), response.json()["csrf_token"]


# --- register ---------------------------------------------------------------------------


async def test_register_returns_201_with_id_and_email(browser: Browser) -> None:
    """POST /auth/register creates the account and answers {"id","email"} only."""
    async with browser() as client:
        response = await register(client, "New@Example.com")
    body = response.json()
    assert set(body) == {"id", "email"}
    assert body["email"] == "New@example.com"
    assert not set_cookies(response)  # registering does not sign in


@pytest.mark.parametrize(
    ("email", "password", "status", "code"),
    [
        ("b@example.com", "short", 400, "weak_password"),
        ("b@example.com", "password123", 400, "weak_password"),
        ("not-an-address", PASSWORD, 400, "invalid_email"),
        ("A@EXAMPLE.COM", PASSWORD, 409, "email_taken"),
    ],
)
async def test_register_refusals(
    client: httpx.AsyncClient, email: str, password: str, status: int, code: str
) -> None:
    """Weak passwords and bad addresses are 400, a taken address (any case) 409."""
    response = await client.post("/auth/register", json={"email": email, "password": password})
    assert response.status_code == status
    assert response.json()["error"] == code


# --- login and the cookie ---------------------------------------------------------------


async def test_login_sets_a_host_prefixed_browser_session_cookie(client: httpx.AsyncClient) -> None:
    """The cookie is __Host-, HttpOnly, Secure, SameSite=Lax, Path=/, no Domain, no
    Max-Age; the body carries the user and a CSRF token but never the secret."""
    response = await client.post(
        "/auth/login", json={"email": "a@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200
    secret, attributes = set_cookies(response)[SESSION_COOKIE]
    assert len(secret) >= 43
    assert "httponly" in attributes and "secure" in attributes
    assert attributes["samesite"].lower() == "lax"
    assert attributes["path"] == "/"
    assert "domain" not in attributes
    assert "max-age" not in attributes and "expires" not in attributes
    body = response.json()
    assert set(body) == {"user", "csrf_token"}
    assert set(body["user"]) == {"id", "email", "roles"}
    assert body["user"]["email"] == "a@example.com" and body["user"]["roles"] == []
    assert secret not in response.text
    assert response.headers["cache-control"] == "no-store"


async def test_remember_me_cookie_lives_remember_max_age(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """ "remember": true makes the cookie persistent for remember_max_age seconds."""
    response = await client.post(
        "/auth/login", json={"email": "a@example.com", "password": PASSWORD, "remember": True}
    )
    _, attributes = set_cookies(response)[SESSION_COOKIE]
    assert attributes["max-age"] == str(settings.remember_max_age)


async def test_unknown_user_and_wrong_password_are_indistinguishable(
    client: httpx.AsyncClient,
) -> None:
    """Same status, body and header names for an unknown address and a wrong password."""
    unknown = await client.post(
        "/auth/login", json={"email": "nobody@example.com", "password": PASSWORD}
    )
    wrong = await client.post(
        "/auth/login", json={"email": "a@example.com", "password": "wrong password!"}
    )
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.content == wrong.content
    assert unknown.json()["error"] == "invalid_credentials"
    ignored = {"date", "content-length"}
    assert set(unknown.headers) - ignored == set(wrong.headers) - ignored
    assert not set_cookies(unknown) and not set_cookies(wrong)


async def test_ten_failures_throttle_even_the_right_password(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    """After 10 failures the account gets 429 too_many_attempts with Retry-After,
    even with the right password; the metrics count each outcome."""
    for _ in range(10):
        response = await client.post(
            "/auth/login", json={"email": "a@example.com", "password": "wrong password!"}
        )
        assert response.status_code == 401
    response = await client.post(
        "/auth/login", json={"email": "a@example.com", "password": PASSWORD}
    )
    assert response.status_code == 429
    assert response.json()["error"] == "too_many_attempts"
    assert int(response.headers["retry-after"]) > 0
    assert SESSION_COOKIE not in set_cookies(response)
    rendered = app.state.metrics.render().decode()
    assert 'keyturn_logins_total{outcome="failure"} 10.0' in rendered
    assert 'keyturn_logins_total{outcome="throttled"} 1.0' in rendered


async def test_successful_login_is_counted(client: httpx.AsyncClient, app: FastAPI) -> None:
    """A sign-in increments keyturn_logins_total{outcome="success"}."""
    await login(client)
    assert 'keyturn_logins_total{outcome="success"} 1.0' in app.state.metrics.render().decode()


async def test_planted_session_id_is_never_adopted(client: httpx.AsyncClient) -> None:
    """A client-chosen cookie at login is replaced by a server-made one and stays dead."""
    response = await client.post(
        "/auth/login",
        json={"email": "a@example.com", "password": PASSWORD},
        headers=with_secret(PLANTED),
    )
    assert response.status_code == 200
    assert session_secret(response) != PLANTED
    assert await status_with(client, PLANTED) == 401


async def test_signing_in_again_ends_the_previous_session(client: httpx.AsyncClient) -> None:
    """Re-login with a live cookie issues a new ID and kills the old one (SEC-03)."""
    first, _ = await signed_in(client)
    second, _ = await signed_in(client)
    assert first != second
    assert await status_with(client, first) == 401
    assert await status_with(client, second) == 200


async def test_session_is_accepted_only_from_the_cookie(
    client: httpx.AsyncClient, browser: Browser
) -> None:
    """The secret in a query, a header or a bearer token authenticates nothing, and a
    bearer header disables the cookie rather than falling back to it."""
    secret, _ = await signed_in(client)
    async with browser() as stranger:
        assert (await stranger.get("/auth/whoami", params={"session": secret})).status_code == 401
        assert (
            await stranger.get("/auth/whoami", headers={"X-Session-Id": secret})
        ).status_code == 401
        bearer = {"Authorization": f"Bearer {secret}"}
        assert (await stranger.get("/auth/whoami", headers=bearer)).status_code == 401
    both = {**with_secret(secret), "Authorization": "Bearer not-a-token"}
    response = await client.get("/auth/whoami", headers=both)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'


@pytest.mark.parametrize(
    "cookie",
    [
        f"{SESSION_COOKIE}={'a' * 10_000}",
        f'{SESSION_COOKIE}="{"a" * 43}"',
        f"{SESSION_COOKIE}='; DROP TABLE sessions; --",
        f"{SESSION_COOKIE}=%00{'a' * 42}",
        f"{SESSION_COOKIE}=\u00e9\u00e9\u00e9",
        f"{SESSION_COOKIE}={PLANTED}; {SESSION_COOKIE}={PLANTED}",
        f"{SESSION_COOKIE}",
        ";;;===;",
    ],
)
async def test_malformed_cookies_are_no_session_never_5xx(
    client: httpx.AsyncClient, cookie: str
) -> None:
    """Oversized, quoted, injected, NUL, non-ASCII and duplicated cookies give 401."""
    response = await client.get("/auth/whoami", headers={"Cookie": cookie.encode("latin-1")})
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


async def test_duplicate_session_cookies_do_not_pick_the_valid_one(
    client: httpx.AsyncClient,
) -> None:
    """Two session cookies, one of them valid, are refused: ordering never decides."""
    secret, _ = await signed_in(client)
    for pair in (f"{secret}; {SESSION_COOKIE}={PLANTED}", f"{PLANTED}; {SESSION_COOKIE}={secret}"):
        headers = {"Cookie": f"{SESSION_COOKIE}={pair}"}
        assert (await client.get("/auth/whoami", headers=headers)).status_code == 401


# --- JSON only ----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/auth/login", "/auth/register"])
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
)
async def test_sign_in_endpoints_accept_only_json(
    client: httpx.AsyncClient, path: str, content_type: str | None
) -> None:
    """JSON bodies sent as a CORS-simple type (or untyped) are 415 (SEC-29)."""
    body = b'{"email": "a@example.com", "password": "correct horse battery staple"}'
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post(path, content=body, headers=headers)
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    assert SESSION_COOKIE not in set_cookies(response)


async def test_password_change_accepts_only_json(client: httpx.AsyncClient) -> None:
    """POST /auth/password with a text/plain body is 415 even with a valid CSRF token."""
    _, token = await signed_in(client)
    response = await client.post(
        "/auth/password",
        content=b'{"current_password": "x", "new_password": "y"}',
        headers={"Content-Type": "text/plain", "X-CSRF-Token": token},
    )
    assert response.status_code == 415


@pytest.mark.parametrize(
    "body",
    [b"{", b"[]", b'{"email": 1, "password": 2}', b'{"email": "a@example.com"}', b"\xff\xfe"],
)
async def test_malformed_login_bodies_are_400(client: httpx.AsyncClient, body: bytes) -> None:
    """Bad JSON, wrong types, missing fields and invalid UTF-8 are 400 invalid_request."""
    response = await client.post(
        "/auth/login", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


# --- whoami -----------------------------------------------------------------------------


async def test_whoami_describes_the_session_and_returns_its_csrf_token(
    client: httpx.AsyncClient,
) -> None:
    """whoami gives sub/email/email_verified/roles/via/session_id/expires_at and the
    CSRF token header."""
    secret, token = await signed_in(client)
    response = await client.get("/auth/whoami")
    assert response.status_code == 200
    body = response.json()
    keys = {"sub", "email", "email_verified", "roles", "via", "session_id", "expires_at"}
    assert set(body) == keys and body["email_verified"] is False
    assert body["via"] == "session" and body["email"] == "a@example.com"
    assert body["expires_at"].endswith("Z")
    assert response.headers["x-csrf-token"] == token
    assert secret not in response.text and body["session_id"] != secret
    listed = (await client.get("/auth/sessions")).json()
    assert [row["id"] for row in listed if row["current"]] == [body["session_id"]]


async def test_unauthenticated_whoami_is_401_with_bearer_challenge(
    client: httpx.AsyncClient,
) -> None:
    """No credential: 401 not_authenticated with WWW-Authenticate: Bearer."""
    response = await client.get("/auth/whoami")
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["cache-control"] == "no-store"


# --- logout -------------------------------------------------------------------------------


async def test_logout_ends_the_session_and_clears_the_cookie(client: httpx.AsyncClient) -> None:
    """POST /auth/logout is 204, clears the cookie (Max-Age=0) and the old ID is dead."""
    secret, token = await signed_in(client)
    response = await client.post("/auth/logout", headers={"X-CSRF-Token": token})
    assert response.status_code == 204
    value, attributes = set_cookies(response)[SESSION_COOKIE]
    assert value in ("", '""') and attributes["max-age"] == "0"
    assert response.headers["cache-control"] == "no-store"
    assert await status_with(client, secret) == 401
    replay = await client.post(
        "/auth/logout", headers={**with_secret(secret), "X-CSRF-Token": token}
    )
    assert replay.status_code == 401


async def test_logout_without_a_credential_is_401(client: httpx.AsyncClient) -> None:
    """Signing out with nothing to sign out of is 401 not_authenticated."""
    response = await client.post("/auth/logout")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_logout_all_ends_every_session_including_this_one(
    client: httpx.AsyncClient, browser: Browser
) -> None:
    """POST /auth/logout-all kills every session of the caller and clears the cookie."""
    async with browser() as other:
        other_secret, _ = await signed_in(other)
        secret, token = await signed_in(client)
        response = await client.post("/auth/logout-all", headers={"X-CSRF-Token": token})
        assert response.status_code == 204
        assert set_cookies(response)[SESSION_COOKIE][1]["max-age"] == "0"
        assert await status_with(client, secret) == 401
        assert await status_with(other, other_secret) == 401


@pytest.mark.parametrize(
    "path", ["/auth/logout", "/auth/logout-all", "/auth/password", "/auth/login"]
)
async def test_get_on_unsafe_endpoints_is_405_and_changes_nothing(
    client: httpx.AsyncClient, path: str
) -> None:
    """State changes need POST: GET is 405 and the session survives (SEC-28)."""
    secret, _ = await signed_in(client)
    response = await client.get(path)
    assert response.status_code == 405
    assert SESSION_COOKIE not in set_cookies(response)
    assert await status_with(client, secret) == 200


# --- sessions list and revocation -----------------------------------------------------------


async def test_sessions_list_shows_every_sign_in_and_marks_the_current_one(
    client: httpx.AsyncClient, browser: Browser
) -> None:
    """Each browser sees all sign-ins, with current true only for its own, and no secrets."""
    async with browser() as other:
        other_secret, _ = await signed_in(other, remember=True)
        secret, _ = await signed_in(client)
        mine = await client.get("/auth/sessions")
        theirs = await other.get("/auth/sessions")
    assert mine.status_code == theirs.status_code == 200
    rows = mine.json()
    assert len(rows) == 2
    keys = {"id", "kind", "created_at", "last_seen_at", "expires_at", "ip", "user_agent", "current"}
    for row in rows:
        assert set(row) == keys
        assert row["kind"] == "browser"
        assert row["created_at"].endswith("Z") and row["expires_at"].endswith("Z")
        assert row["user_agent"].startswith("python-httpx")
    assert sum(row["current"] for row in rows) == 1
    mine_current = next(row["id"] for row in rows if row["current"])
    theirs_current = next(row["id"] for row in theirs.json() if row["current"])
    assert mine_current != theirs_current
    for text in (mine.text, theirs.text):
        assert secret not in text and other_secret not in text


async def test_deleting_another_sign_in_ends_only_that_one(
    client: httpx.AsyncClient, browser: Browser
) -> None:
    """DELETE /auth/sessions/{id} of another of my sessions: 204, it is 401, I am not."""
    async with browser() as other:
        other_secret, _ = await signed_in(other)
        secret, token = await signed_in(client)
        rows = (await client.get("/auth/sessions")).json()
        target = next(row["id"] for row in rows if not row["current"])
        response = await client.delete(f"/auth/sessions/{target}", headers={"X-CSRF-Token": token})
        assert response.status_code == 204
        assert SESSION_COOKIE not in set_cookies(response)
        assert await status_with(other, other_secret) == 401
        assert await status_with(client, secret) == 200
        again = await client.delete(f"/auth/sessions/{target}", headers={"X-CSRF-Token": token})
        assert again.status_code == 404


async def test_deleting_someone_elses_sign_in_is_404(
    client: httpx.AsyncClient, browser: Browser
) -> None:
    """Another user's session handle (or a made-up one) is 404 not_found and survives."""
    async with browser() as mallory:
        await register(mallory, "m@example.com")
        mallory_secret, _ = await signed_in_as(mallory, "m@example.com")
        handle = (await mallory.get("/auth/sessions")).json()[0]["id"]
        _, token = await signed_in(client)
        for target in (handle, "no-such-session-id", "A" * 16):
            response = await client.delete(
                f"/auth/sessions/{target}", headers={"X-CSRF-Token": token}
            )
            assert response.status_code == 404
            assert response.json()["error"] == "not_found"
        assert await status_with(mallory, mallory_secret) == 200


async def test_deleting_the_current_sign_in_clears_its_cookie(client: httpx.AsyncClient) -> None:
    """Revoking one's own current session by id ends it and clears the cookie."""
    secret, token = await signed_in(client)
    current = (await client.get("/auth/whoami")).json()["session_id"]
    response = await client.delete(f"/auth/sessions/{current}", headers={"X-CSRF-Token": token})
    assert response.status_code == 204
    assert set_cookies(response)[SESSION_COOKIE][1]["max-age"] == "0"
    assert await status_with(client, secret) == 401


async def signed_in_as(client: httpx.AsyncClient, email: str) -> tuple[str, str]:
    response = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return session_secret(response), response.json()["csrf_token"]


# --- password change ------------------------------------------------------------------------


async def test_password_change_rotates_this_session_and_ends_the_others(
    client: httpx.AsyncClient, browser: Browser
) -> None:
    """204 with a new cookie and CSRF token; the old ID, the old token and every other
    session stop working; the new password signs in, the old one does not."""
    async with browser() as other:
        other_secret, _ = await signed_in(other)
        secret, token = await signed_in(client)
        handle = (await client.get("/auth/whoami")).json()["session_id"]
        response = await client.post(
            "/auth/password",
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers={"X-CSRF-Token": token},
        )
        assert response.status_code == 204
        new_secret = session_secret(response)
        new_token = response.headers["x-csrf-token"]
        assert new_secret != secret and new_token != token
        assert new_secret not in response.text
        assert await status_with(client, secret) == 401
        assert await status_with(other, other_secret) == 401
        whoami = await client.get("/auth/whoami")
        assert whoami.status_code == 200 and whoami.json()["session_id"] == handle
        stale = await client.post("/auth/logout", headers={"X-CSRF-Token": token})
        assert stale.status_code == 403
        async with browser() as fresh:
            old = await fresh.post(
                "/auth/login", json={"email": "a@example.com", "password": PASSWORD}
            )
            assert old.status_code == 401
            assert (await signed_in_with(fresh, NEW_PASSWORD)).status_code == 200


async def signed_in_with(client: httpx.AsyncClient, password: str) -> httpx.Response:
    return await client.post("/auth/login", json={"email": "a@example.com", "password": password})


@pytest.mark.parametrize(
    ("current", "new", "status", "code"),
    [
        ("wrong password!", NEW_PASSWORD, 401, "invalid_credentials"),
        (PASSWORD, "short", 400, "weak_password"),
    ],
)
async def test_password_change_refusals_keep_the_session(
    client: httpx.AsyncClient, current: str, new: str, status: int, code: str
) -> None:
    """A wrong current password is 401, a weak new one 400; nothing rotates."""
    secret, token = await signed_in(client)
    response = await client.post(
        "/auth/password",
        json={"current_password": current, "new_password": new},
        headers={"X-CSRF-Token": token},
    )
    assert response.status_code == status
    assert response.json()["error"] == code
    assert SESSION_COOKIE not in set_cookies(response)
    assert await status_with(client, secret) == 200


async def test_unauthenticated_session_endpoints_are_401(client: httpx.AsyncClient) -> None:
    """Every protected endpoint answers 401 not_authenticated without a credential."""
    calls = [
        client.post("/auth/logout-all"),
        client.get("/auth/sessions"),
        client.delete("/auth/sessions/abc"),
        client.post("/auth/password", json={"current_password": "x", "new_password": "y"}),
    ]
    for call in calls:
        response = await call
        assert response.status_code == 401
        assert response.json()["error"] == "not_authenticated"
        assert response.headers["www-authenticate"] == "Bearer"


async def test_session_secret_never_appears_in_any_body(
    client: httpx.AsyncClient, browser: Browser
) -> None:
    """Across a whole session's life the secret is only ever in Set-Cookie (SEC-12)."""
    bodies: list[str] = []
    response = await client.post(
        "/auth/login", json={"email": "a@example.com", "password": PASSWORD}
    )
    secrets_seen = [session_secret(response)]
    token = response.json()["csrf_token"]
    bodies.append(response.text)
    for path in ("/auth/whoami", "/auth/sessions", "/account", "/login"):
        bodies.append((await client.get(path)).text)
    response = await client.post(
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers={"X-CSRF-Token": token},
    )
    secrets_seen.append(session_secret(response))
    bodies.append(response.text)
    bodies.append((await client.get("/account")).text)
    response = await client.post(
        "/auth/logout", headers={"X-CSRF-Token": response.headers["x-csrf-token"]}
    )
    bodies.append(response.text)
    for secret in secrets_seen:
        for body in bodies:
            assert secret not in body


async def test_session_store_outage_is_503_never_500_nor_accept(
    make_client: MakeClient, make_keyturn: Callable[..., Keyturn]
) -> None:
    """A session cookie that cannot be checked because the store is down is 503
    store_unavailable: never a 500, never a silent accept."""
    storage = MemoryStorage()

    async def down(id_hash: str) -> None:
        raise StoreUnavailable()

    async with make_client(keyturn=make_keyturn(storage=storage), base_url=BASE) as client:
        storage.sessions.get = down  # type: ignore[method-assign]
        response = await client.get("/auth/whoami", headers=with_secret(PLANTED))
    assert response.status_code == 503
    assert response.json()["error"] == "store_unavailable"
