"""The pages of multi-factor sign-in: ``/login`` -> ``/login/mfa`` carrying
``next``, the account page's two-step section, and the TOTP set-up pages."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pyotp
import pytest
from tests.server.conftest import MakeClient
from tests.server.http_support import BASE
from tests.server.test_mfa import EMAIL, PASSWORD, SESSION, enrol, login, signed_out
from tests.server.test_pages import Form, assert_accessible_page
from tests.support import set_cookies

from keyturn.clock import FrozenClock
from keyturn.runtime import Keyturn
from keyturn.settings import Settings


@pytest.fixture
def clock() -> FrozenClock:
    """A frozen clock at a whole second."""
    return FrozenClock(1_800_000_000.0)


@pytest.fixture
async def client(
    make_client: MakeClient, make_keyturn: Callable[..., Keyturn], clock: FrozenClock
) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose account has TOTP on, signed out; ``client.secret`` is the secret."""
    settings = Settings(database_url="sqlite+aiosqlite:///:memory:", issuer=BASE)
    async with make_client(settings, make_keyturn(settings, clock=clock), base_url=BASE) as c:
        await c.post("/auth/register", json={"email": EMAIL, "password": PASSWORD})
        await login(c)
        secret, codes = await enrol(c, clock)
        await signed_out(c)
        c.secret, c.codes = secret, codes  # type: ignore[attr-defined]
        yield c


async def password_step(client: httpx.AsyncClient, next_path: str = "") -> httpx.Response:
    token = Form((await client.get("/login", params={"next": next_path})).text).value("csrf_token")
    data = {"email": EMAIL, "password": PASSWORD, "csrf_token": token or "", "next": next_path}
    return await client.post("/login", data=data)


async def test_login_page_asks_for_the_second_factor_without_a_session(
    client: httpx.AsyncClient,
) -> None:
    """The right password renders the /login/mfa form (accessible, no inline script)
    and sets no session cookie."""
    page = await password_step(client)
    assert page.status_code == 200
    form = assert_accessible_page(page)
    assert form.value("mfa_token") and 'action="/login/mfa"' in page.text
    assert SESSION not in set_cookies(page)
    assert page.headers["cache-control"] == "no-store"


async def test_second_step_page_goes_to_next(client: httpx.AsyncClient, clock: FrozenClock) -> None:
    """A correct code on /login/mfa signs in and goes to the next of /login?next=
    (an /oauth/authorize URL survives the round trip)."""
    target = "/oauth/authorize?client_id=app&state=xyz"
    form = Form((await password_step(client, target)).text)
    data = {
        "csrf_token": form.value("csrf_token") or "",
        "mfa_token": form.value("mfa_token") or "",
        "code": pyotp.TOTP(client.secret).at(clock.now()),  # type: ignore[attr-defined]
    }
    done = await client.post("/login/mfa", data=data)
    assert done.status_code == 303 and done.headers["location"] == target
    assert SESSION in set_cookies(done)


async def test_wrong_code_on_the_page_says_how_many_attempts_are_left(
    client: httpx.AsyncClient,
) -> None:
    """A wrong code re-renders the form with 401 and the attempts left."""
    form = Form((await password_step(client)).text)
    data = {
        "csrf_token": form.value("csrf_token") or "",
        "mfa_token": form.value("mfa_token") or "",
        "code": "000000",
    }
    wrong = await client.post("/login/mfa", data=data)
    assert wrong.status_code == 401 and "4 attempts left" in wrong.text


async def test_second_step_page_refuses_a_missing_login_csrf_token(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """Without the form's csrf_token the page does not sign in."""
    form = Form((await password_step(client)).text)
    data = {
        "mfa_token": form.value("mfa_token") or "",
        "code": pyotp.TOTP(client.secret).at(clock.now()),  # type: ignore[attr-defined]
    }
    refused = await client.post("/login/mfa", data=data)
    assert refused.status_code == 401 and SESSION not in set_cookies(refused)


async def test_account_shows_factors_and_recovery_codes_left(
    client: httpx.AsyncClient, clock: FrozenClock
) -> None:
    """/account says the app is set up and how many recovery codes are left."""
    form = Form((await password_step(client)).text)
    await client.post(
        "/login/mfa",
        data={
            "csrf_token": form.value("csrf_token") or "",
            "mfa_token": form.value("mfa_token") or "",
            "recovery_code": client.codes[0],  # type: ignore[attr-defined]
        },
    )
    account = await client.get("/account")
    assert_accessible_page(account)
    assert "An authenticator app is set up." in account.text
    left = re.search(r"data-recovery-codes-left>(\d+)<", account.text)
    assert left is not None and left.group(1) == "9"


async def test_oauth_authorize_round_trip_asks_for_the_second_factor(
    make_app: Callable[..., Any],
    make_client: MakeClient,
    make_keyturn: Callable[..., Keyturn],
    clock: FrozenClock,
) -> None:
    """/oauth/authorize -> /login?next= -> /login/mfa -> back to the request: the
    code's tokens carry amr pwd+otp+mfa; the second step's page lets the form
    redirect on to the client (form-action)."""
    from tests.server.code_flow_support import (
        authorize,
        authorize_params,
        exchange,
        pkce,
        query_of,
        register_client,
    )
    from tests.server.test_mfa import claims_of

    settings = Settings(database_url="sqlite+aiosqlite:///:memory:", issuer=BASE)
    app = make_app(settings, make_keyturn(settings, clock=clock))
    async with make_client(app=app, base_url=BASE) as c:
        await c.post("/auth/register", json={"email": EMAIL, "password": PASSWORD})
        await login(c)
        secret, _ = await enrol(c, clock)
        await signed_out(c)
        registered = await register_client(app)
        proof = pkce()
        params = authorize_params(registered, proof)
        bounced = await authorize(c, params)
        assert bounced.status_code == 303
        next_path = query_of(bounced.headers["location"])["next"]
        page = await password_step(c, next_path)
        assert page.status_code == 200 and SESSION not in set_cookies(page)
        assert "form-action 'self' http" in page.headers["content-security-policy"]
        form = Form(page.text)
        done = await c.post(
            "/login/mfa",
            data={
                "csrf_token": form.value("csrf_token") or "",
                "mfa_token": form.value("mfa_token") or "",
                "code": pyotp.TOTP(secret).at(clock.now()),
            },
        )
        assert done.status_code == 303 and done.headers["location"] == next_path
        back = await c.get(next_path, follow_redirects=False)
        code = query_of(back.headers["location"])["code"]
        tokens = await exchange(c, registered, code, proof.verifier)
        assert tokens.status_code == 200, tokens.text
        assert claims_of(tokens.json()["access_token"])["amr"] == ["pwd", "otp", "mfa"]
