"""Black-box tests of multi-factor sign-in over HTTP (SPEC "Multi-factor sign-in
and passkeys"): TOTP enrolment, the two-step sign-in, recovery codes, the
password grant, amr/acr, require(mfa=True) and the fresh-session rule.

In-process app on a memory store; codes come from pyotp, as an authenticator
app would compute them."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import httpx
import pyotp
import pytest
from fastapi import Depends, FastAPI
from tests.server.conftest import MakeClient
from tests.server.http_support import BASE
from tests.support import set_cookies

from keyturn.clock import FrozenClock
from keyturn.principal import Principal
from keyturn.runtime import Keyturn
from keyturn.settings import Settings
from keyturn.web import require

PASSWORD = "correct horse battery staple"
EMAIL = "mfa@example.com"
SESSION = "__Host-keyturn_session"
BINDING = "__Host-keyturn_mfa"


@pytest.fixture
def settings() -> Settings:
    """An issuer on the test server's origin, and the password grant on (off by default)."""
    return Settings(database_url="sqlite+aiosqlite:///:memory:", issuer=BASE, password_grant=True)


@pytest.fixture
def clock() -> FrozenClock:
    """Now, frozen: TOTP codes are computed for the server's own time."""
    return FrozenClock(float(int(time.time())))


@pytest.fixture
def keyturn(
    make_keyturn: Callable[..., Keyturn], settings: Settings, clock: FrozenClock
) -> Keyturn:
    """The instance under test (read by tests that look at the stores)."""
    return make_keyturn(settings, clock=clock)


@pytest.fixture
async def client(
    make_client: MakeClient, settings: Settings, keyturn: Keyturn
) -> AsyncIterator[httpx.AsyncClient]:
    """A client with a registered, signed-in account."""
    async with make_client(settings, keyturn, base_url=BASE) as opened:
        response = await opened.post("/auth/register", json={"email": EMAIL, "password": PASSWORD})
        assert response.status_code == 201
        await login(opened)
        yield opened


async def login(client: httpx.AsyncClient, **extra: Any) -> httpx.Response:
    response = await client.post(
        "/auth/login", json={"email": EMAIL, "password": PASSWORD, **extra}
    )
    if "csrf_token" in response.json():
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return response


def code_for(secret: str, clock: FrozenClock, steps: int = 0) -> str:
    return pyotp.TOTP(secret).at(clock.now() + 30 * steps)


async def enrol(client: httpx.AsyncClient, clock: FrozenClock) -> tuple[str, list[str]]:
    """Set up TOTP for the signed-in client: the secret and the recovery codes."""
    begun = await client.post("/auth/mfa/totp")
    assert begun.status_code == 200, begun.text
    secret = begun.json()["secret"]
    confirmed = await client.post("/auth/mfa/totp/confirm", json={"code": code_for(secret, clock)})
    assert confirmed.status_code == 200, confirmed.text
    clock.advance(30)  # the confirming code's step is spent
    return secret, confirmed.json()["recovery_codes"]


async def signed_out(client: httpx.AsyncClient) -> None:
    await client.post("/auth/logout")
    client.cookies.clear()
    client.headers.pop("X-CSRF-Token", None)


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


async def test_totp_enrolment_shows_secret_uri_and_svg_qr_then_ten_recovery_codes(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """POST /auth/mfa/totp shows the secret, the otpauth URI and an SVG QR; the first
    code activates it and returns 10 distinct recovery codes; /auth/mfa counts them."""
    begun = await client.post("/auth/mfa/totp")
    body = begun.json()
    assert begun.headers["cache-control"].startswith("no-store")
    assert body["otpauth_uri"].startswith("otpauth://totp/")
    assert f"secret={body['secret']}" in body["otpauth_uri"]
    assert body["qr_svg"].startswith("<svg") and "<script" not in body["qr_svg"]
    wrong = await client.post("/auth/mfa/totp/confirm", json={"code": "000000"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_mfa_code"
    confirmed = await client.post(
        "/auth/mfa/totp/confirm", json={"code": code_for(body["secret"], clock)}
    )
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == len(set(codes)) == 10
    status = (await client.get("/auth/mfa")).json()
    assert status == {"totp": True, "recovery_codes_left": 10, "passkeys": []}


async def test_factor_changes_need_a_fresh_session(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """Past --fresh-auth-window, enrolling, removing and new recovery codes are 401
    insufficient_user_authentication until the password is confirmed again."""
    await enrol(client, clock)
    clock.advance(301)
    for method, path in (
        ("POST", "/auth/mfa/totp"),
        ("DELETE", "/auth/mfa/totp"),
        ("POST", "/auth/mfa/recovery-codes"),
        ("POST", "/auth/webauthn/register/options"),
    ):
        refused = await client.request(method, path)
        assert refused.status_code == 401, path
        assert refused.json()["error"] == "insufficient_user_authentication"
    again = await client.post("/auth/reauthenticate", json={"password": PASSWORD})
    assert again.status_code == 204
    client.headers["X-CSRF-Token"] = again.headers["x-csrf-token"]
    assert (await client.post("/auth/mfa/recovery-codes")).status_code == 200


async def test_password_step_gives_an_mfa_token_and_no_session(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """A correct password for an enrolled user answers mfa_required with an mfa_token
    and methods, sets no session cookie, and binds the token with a Strict cookie."""
    await enrol(client, clock)
    await signed_out(client)
    response = await login(client)
    body = response.json()
    assert response.status_code == 200
    assert body["mfa_required"] is True and body["methods"] == ["totp", "recovery_code"]
    assert body["expires_in"] <= 300 and len(body["mfa_token"]) >= 40
    cookies = set_cookies(response)
    assert SESSION not in cookies
    value, attributes = cookies[BINDING]
    assert value and attributes["samesite"].lower() == "strict" and "httponly" in attributes
    assert (await client.get("/auth/whoami")).status_code == 401


async def test_second_step_signs_in_with_amr_and_a_code_works_once(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """/auth/login/mfa with the TOTP code gives the normal answer and a session whose
    tokens carry amr pwd+otp+mfa and the mfa acr; the same code is refused next time."""
    secret, _ = await enrol(client, clock)
    await signed_out(client)
    token = (await login(client)).json()["mfa_token"]
    code = code_for(secret, clock)
    finished = await client.post("/auth/login/mfa", json={"mfa_token": token, "code": code})
    assert finished.status_code == 200, finished.text
    assert finished.json()["user"]["email"] == EMAIL
    assert SESSION in set_cookies(finished)
    client.headers["X-CSRF-Token"] = finished.json()["csrf_token"]
    minted = await client.post("/auth/token")
    claims = claims_of(minted.json()["access_token"])
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert claims["acr"] == "urn:keyturn:acr:mfa"
    # The same code again, within its 30 s, on a new sign-in: refused.
    await signed_out(client)
    token = (await login(client)).json()["mfa_token"]
    replay = await client.post("/auth/login/mfa", json={"mfa_token": token, "code": code})
    assert replay.status_code == 401 and replay.json()["error"] == "invalid_mfa_code"


async def test_mfa_token_dies_after_five_wrong_codes(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """Five wrong codes kill the mfa_token: even the right code is then invalid_mfa_token."""
    secret, _ = await enrol(client, clock)
    await signed_out(client)
    token = (await login(client)).json()["mfa_token"]
    for _ in range(5):
        wrong = await client.post("/auth/login/mfa", json={"mfa_token": token, "code": "123456"})
        assert wrong.json()["error"] in ("invalid_mfa_code", "invalid_mfa_token")
    right = code_for(secret, clock)
    dead = await client.post("/auth/login/mfa", json={"mfa_token": token, "code": right})
    assert dead.status_code == 401 and dead.json()["error"] == "invalid_mfa_token"


async def test_mfa_token_expires_and_is_single_use(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """A token older than 300 s is dead, and a used one cannot sign in twice."""
    secret, _ = await enrol(client, clock)
    await signed_out(client)
    old = (await login(client)).json()["mfa_token"]
    clock.advance(301)
    late = await client.post(
        "/auth/login/mfa", json={"mfa_token": old, "code": code_for(secret, clock)}
    )
    assert late.status_code == 401 and late.json()["error"] == "invalid_mfa_token"
    token = (await login(client)).json()["mfa_token"]
    first = await client.post(
        "/auth/login/mfa", json={"mfa_token": token, "code": code_for(secret, clock)}
    )
    assert first.status_code == 200
    again = await client.post(
        "/auth/login/mfa", json={"mfa_token": token, "code": code_for(secret, clock, 1)}
    )
    assert again.status_code == 401 and again.json()["error"] == "invalid_mfa_token"


async def test_mfa_token_is_bound_to_the_client_that_started(
    client: httpx.AsyncClient,
    clock: FrozenClock,
    make_client: MakeClient,
    settings: Settings,
    keyturn: Keyturn,
) -> None:
    """Another client (without the binding cookie) cannot finish someone's sign-in."""
    secret, _ = await enrol(client, clock)
    await signed_out(client)
    token = (await login(client)).json()["mfa_token"]
    thief = httpx.AsyncClient(transport=client._transport, base_url=BASE)
    async with thief:
        stolen = await thief.post(
            "/auth/login/mfa", json={"mfa_token": token, "code": code_for(secret, clock)}
        )
        assert stolen.status_code == 401 and stolen.json()["error"] == "invalid_mfa_token"
        thief.cookies.set(BINDING, "x" * 43, domain="testserver")
        forged = await thief.post(
            "/auth/login/mfa", json={"mfa_token": token, "code": code_for(secret, clock)}
        )
        assert forged.status_code == 401 and forged.json()["error"] == "invalid_mfa_token"


async def test_wrong_codes_count_in_the_account_throttle(
    make_client: MakeClient, make_keyturn: Callable[..., Keyturn], clock: FrozenClock
) -> None:
    """With 3 failures allowed per account, 3 wrong codes lock the account: the
    right code and the right password then get 429 too_many_attempts."""
    settings = Settings(
        database_url="sqlite+aiosqlite:///:memory:", issuer=BASE, login_max_account_failures=3
    )
    async with make_client(settings, make_keyturn(settings, clock=clock), base_url=BASE) as c:
        await c.post("/auth/register", json={"email": EMAIL, "password": PASSWORD})
        await login(c)
        secret, _ = await enrol(c, clock)
        await signed_out(c)
        token = (await login(c)).json()["mfa_token"]
        for _ in range(3):
            wrong = await c.post("/auth/login/mfa", json={"mfa_token": token, "code": "654321"})
            assert wrong.status_code == 401
        locked = await c.post(
            "/auth/login/mfa", json={"mfa_token": token, "code": code_for(secret, clock)}
        )
        assert locked.status_code == 429 and "retry-after" in locked.headers
        assert (await login(c)).status_code == 429


async def test_a_recovery_code_signs_in_once_and_the_count_drops(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """A recovery code finishes the second step (any case, dashes optional), only
    once; /auth/mfa then shows 9 left."""
    _, codes = await enrol(client, clock)
    await signed_out(client)
    token = (await login(client)).json()["mfa_token"]
    typed = codes[0].upper().replace("-", " ")
    used = await client.post("/auth/login/mfa", json={"mfa_token": token, "recovery_code": typed})
    assert used.status_code == 200, used.text
    client.headers["X-CSRF-Token"] = used.json()["csrf_token"]
    assert (await client.get("/auth/mfa")).json()["recovery_codes_left"] == 9
    await signed_out(client)
    token = (await login(client)).json()["mfa_token"]
    again = await client.post(
        "/auth/login/mfa", json={"mfa_token": token, "recovery_code": codes[0]}
    )
    assert again.status_code == 401 and again.json()["error"] == "invalid_mfa_code"


async def test_new_recovery_codes_replace_the_old_set(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """POST /auth/mfa/recovery-codes issues 10 new codes and the old ones stop working."""
    _, old = await enrol(client, clock)
    new = (await client.post("/auth/mfa/recovery-codes")).json()["recovery_codes"]
    assert len(new) == 10 and not set(new) & set(old)
    await signed_out(client)
    token = (await login(client)).json()["mfa_token"]
    stale = await client.post("/auth/login/mfa", json={"mfa_token": token, "recovery_code": old[1]})
    assert stale.status_code == 401
    fresh = await client.post("/auth/login/mfa", json={"mfa_token": token, "recovery_code": new[1]})
    assert fresh.status_code == 200


async def test_removing_totp_brings_back_the_one_step_sign_in(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """DELETE /auth/mfa/totp (fresh) turns MFA off: recovery codes go with it and
    /auth/login opens a session again."""
    await enrol(client, clock)
    assert (await client.delete("/auth/mfa/totp")).status_code == 204
    assert (await client.get("/auth/mfa")).json()["recovery_codes_left"] == 0
    await signed_out(client)
    assert SESSION in set_cookies(await login(client))


async def test_password_grant_refuses_mfa_users(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """grant_type=password for an enrolled user: 400 invalid_grant, mfa_required."""
    await enrol(client, clock)
    refused = await client.post(
        "/oauth/token",
        data={"grant_type": "password", "username": EMAIL, "password": PASSWORD},
    )
    assert refused.status_code == 400
    assert refused.json() == {"error": "invalid_grant", "error_description": "mfa_required"}


async def test_single_factor_sessions_carry_pwd_amr(client: httpx.AsyncClient) -> None:
    """A password-only session's tokens say amr ["pwd"] and the single-factor acr."""
    claims = claims_of((await client.post("/auth/token")).json()["access_token"])
    assert claims["amr"] == ["pwd"] and claims["acr"] == "urn:keyturn:acr:1fa"


async def test_require_mfa_refuses_single_factor_callers(
    make_client: MakeClient, settings: Settings, keyturn: Keyturn, clock: FrozenClock
) -> None:
    """require(mfa=True) answers a password-only session 401
    insufficient_user_authentication with acr_values, and lets an MFA session in."""
    from keyturn.web import install

    app = FastAPI(lifespan=keyturn.lifespan)

    @app.get("/vault")
    async def vault(caller: Annotated[Principal, Depends(require(mfa=True))]) -> dict[str, str]:
        return {"sub": caller.subject}

    install(app, keyturn)
    async with make_client(app=app, base_url=BASE) as c:
        await c.post("/auth/register", json={"email": EMAIL, "password": PASSWORD})
        await login(c)
        refused = await c.get("/vault")
        assert refused.status_code == 401
        assert refused.json()["error"] == "insufficient_user_authentication"
        assert 'acr_values="urn:keyturn:acr:mfa"' in refused.headers["www-authenticate"]
        secret, _ = await enrol(c, clock)
        await signed_out(c)
        token = (await login(c)).json()["mfa_token"]
        await c.post("/auth/login/mfa", json={"mfa_token": token, "code": code_for(secret, clock)})
        assert (await c.get("/vault")).status_code == 200


async def test_mfa_reset_removes_every_factor(
    client: httpx.AsyncClient, clock: FrozenClock, keyturn: Keyturn
) -> None:
    """The operator reset (keyturn user mfa-reset) removes TOTP and recovery codes
    and ends half-finished sign-ins."""
    await enrol(client, clock)
    await signed_out(client)
    token = (await login(client)).json()["mfa_token"]
    user = await keyturn.storage.users.get_by_email(EMAIL)
    assert user is not None
    await keyturn.mfa_factors.reset(user)
    ended = await client.post("/auth/login/mfa", json={"mfa_token": token, "code": "000000"})
    assert ended.json()["error"] == "invalid_mfa_token"
    assert SESSION in set_cookies(await login(client))


async def test_second_step_bodies_are_checked(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """No factor, two factors, or a method not offered: 400; garbage tokens: 401."""
    await enrol(client, clock)
    await signed_out(client)
    token = (await login(client)).json()["mfa_token"]
    none = await client.post("/auth/login/mfa", json={"mfa_token": token})
    assert none.status_code == 400
    both = await client.post(
        "/auth/login/mfa", json={"mfa_token": token, "code": "1", "recovery_code": "2"}
    )
    assert both.status_code == 400
    passkey = await client.post("/auth/login/mfa", json={"mfa_token": token, "webauthn": {}})
    assert passkey.status_code == 400
    garbage = await client.post("/auth/login/mfa", json={"mfa_token": "x" * 500, "code": "1"})
    assert garbage.status_code == 401


async def test_a_password_change_ends_half_finished_sign_ins(
    client: httpx.AsyncClient,
    clock: FrozenClock,
    make_client: MakeClient,
    settings: Settings,
    keyturn: Keyturn,
) -> None:
    """An mfa_token earned with the old password dies when the password changes."""
    secret, _ = await enrol(client, clock)
    other = httpx.AsyncClient(transport=client._transport, base_url=BASE)
    async with other:
        token = (await login(other)).json()["mfa_token"]
        changed = await client.post(
            "/auth/password",
            json={"current_password": PASSWORD, "new_password": PASSWORD + " again"},
        )
        assert changed.status_code == 204
        late = await other.post(
            "/auth/login/mfa", json={"mfa_token": token, "code": code_for(secret, clock)}
        )
        assert late.status_code == 401 and late.json()["error"] == "invalid_mfa_token"


async def test_a_known_password_does_not_reset_the_count_of_wrong_codes(
    make_client: MakeClient, make_keyturn: Callable[..., Keyturn], clock: FrozenClock
) -> None:
    """For an enrolled user the correct password neither counts nor clears the
    account's failures: 2 wrong passwords, the right one, then 1 wrong code lock an
    account allowed 3 failures; only a finished sign-in clears the count."""
    settings = Settings(
        database_url="sqlite+aiosqlite:///:memory:", issuer=BASE, login_max_account_failures=3
    )
    async with make_client(settings, make_keyturn(settings, clock=clock), base_url=BASE) as c:
        await c.post("/auth/register", json={"email": EMAIL, "password": PASSWORD})
        await login(c)
        secret, _ = await enrol(c, clock)
        await signed_out(c)
        for _ in range(2):
            bad = await c.post("/auth/login", json={"email": EMAIL, "password": "wrong" * 3})
            assert bad.status_code == 401
        token = (await login(c)).json()["mfa_token"]
        wrong = await c.post("/auth/login/mfa", json={"mfa_token": token, "code": "111111"})
        assert wrong.status_code == 401
        locked = await c.post(
            "/auth/login/mfa", json={"mfa_token": token, "code": code_for(secret, clock)}
        )
        assert locked.status_code == 429
