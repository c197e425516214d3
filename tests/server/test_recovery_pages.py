"""The recovery pages and the account page's forms (#14): labelled, CSRF-protected,
usable without JavaScript (plain form posts, in-process)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from fastapi import FastAPI
from tests.server.conftest import MakeClient
from tests.server.http_support import BASE
from tests.server.test_pages import PASSWORD, Form, assert_accessible_page, form_token

from keyturn.mail.mailer import MemoryMailer
from keyturn.runtime import Keyturn
from keyturn.settings import Settings
from keyturn.web.app import create_app

NEW_PASSWORD = "a brand new passphrase"
_TOKEN = re.compile(r"token=([A-Za-z0-9_-]{43})")


@pytest.fixture
def mailer() -> MemoryMailer:
    return MemoryMailer()


@pytest.fixture
def app(make_keyturn: Callable[..., Keyturn], mailer: MemoryMailer) -> FastAPI:
    settings = Settings(database_url="sqlite+aiosqlite:///:memory:", issuer=BASE)
    return create_app(settings, keyturn=make_keyturn(settings, mailer=mailer))


@pytest.fixture
async def client(make_client: MakeClient, app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A browser with a registered account, signed out."""
    async with make_client(app=app, base_url=BASE) as opened:
        response = await opened.post(
            "/auth/register", json={"email": "a@example.com", "password": PASSWORD}
        )
        assert response.status_code == 201
        yield opened


async def mailed_token(mailer: MemoryMailer, subject: str) -> str:
    """The token of the newest mail whose subject has ``subject`` (delivered by the
    app's background dispatcher)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for message in reversed(mailer.sent):
            if subject in str(message["Subject"]):
                found = _TOKEN.search(message.as_string())
                assert found is not None
                return found.group(1)
        await asyncio.sleep(0.01)
    raise AssertionError(f"no {subject!r} mail")


async def sign_in(client: httpx.AsyncClient, password: str = PASSWORD) -> None:
    token = await form_token(client)
    data = {"email": "a@example.com", "password": password, "csrf_token": token}
    response = await client.post("/login", data=data)
    assert response.status_code == 303, response.text


async def test_the_login_page_links_to_forgot_password(client: httpx.AsyncClient) -> None:
    """/login offers "Forgot your password?" pointing at /password/forgot."""
    response = await client.get("/login")
    assert '<a href="/password/forgot">Forgot your password?</a>' in response.text


async def test_forgot_and_reset_pages_work_without_javascript(
    client: httpx.AsyncClient, mailer: MemoryMailer
) -> None:
    """Forgot form -> "Check your e-mail" -> the link's form -> password set; all
    pages accessible (labels, no script), and the link alone spends nothing."""
    page = assert_accessible_page(await client.get("/password/forgot"))
    assert {field.get("name") for field in page.inputs} == {"csrf_token", "email"}
    data = {"email": "a@example.com", "csrf_token": await form_token(client, "/password/forgot")}
    response = await client.post("/password/forgot", data=data)
    assert response.status_code == 200 and "Check your e-mail" in response.text
    token = await mailed_token(mailer, "Reset your")
    for _ in range(2):  # opening the link twice (a mail scanner) changes nothing
        form_page = await client.get(f"/password/reset?token={token}")
    page = assert_accessible_page(form_page)
    assert page.value("token") == token
    data = {"token": token, "new_password": NEW_PASSWORD, "csrf_token": page.value("csrf_token")}
    response = await client.post("/password/reset", data=data)  # type: ignore[arg-type]
    assert response.status_code == 200 and "Your password is set" in response.text
    await sign_in(client, NEW_PASSWORD)


async def test_the_forgot_page_gives_one_answer_for_every_address(
    client: httpx.AsyncClient,
) -> None:
    """An unknown address gets exactly the page a known one gets."""
    pages = []
    for email in ("a@example.com", "nobody@example.com"):
        token = await form_token(client, "/password/forgot")
        response = await client.post("/password/forgot", data={"email": email, "csrf_token": token})
        pages.append((response.status_code, response.text))
    assert pages[0] == pages[1]


async def test_recovery_forms_refuse_a_missing_or_foreign_csrf_token(
    client: httpx.AsyncClient,
) -> None:
    """Without the login-CSRF token, or from another site, the forms do nothing (403)."""
    response = await client.post("/password/forgot", data={"email": "a@example.com"})
    assert response.status_code == 403
    token = await form_token(client, "/password/forgot")
    response = await client.post(
        "/password/forgot",
        data={"email": "a@example.com", "csrf_token": token},
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert response.status_code == 403


async def test_a_bad_reset_link_says_so_and_offers_a_new_one(client: httpx.AsyncClient) -> None:
    """A made-up token: 400 with a link to ask again."""
    page = Form((await client.get("/password/reset?token=" + "A" * 43)).text)
    data = {"token": "A" * 43, "new_password": NEW_PASSWORD, "csrf_token": page.value("csrf_token")}
    response = await client.post("/password/reset", data=data)  # type: ignore[arg-type]
    assert response.status_code == 400
    assert 'href="/password/forgot"' in response.text


async def test_the_account_page_has_labelled_password_and_email_forms(
    client: httpx.AsyncClient,
) -> None:
    """/account shows the address (unconfirmed), a resend button, and the change-e-mail
    and change-password forms, each with the session's CSRF token."""
    await sign_in(client)
    response = await client.get("/account")
    page = assert_accessible_page(response)
    assert "is not confirmed yet" in response.text
    for action in ("/account/email", "/account/password", "/account/email/verify/resend"):
        assert f'action="{action}"' in response.text
    names = {field.get("name") for field in page.inputs}
    assert {"new_email", "current_password", "new_password"} <= names


async def test_the_account_forms_change_the_password_and_start_an_email_change(
    client: httpx.AsyncClient, mailer: MemoryMailer
) -> None:
    """Change password (303 back, new password signs in), then change e-mail (link to
    the new address, which the confirm page finishes), without JavaScript."""
    await sign_in(client)
    csrf = Form((await client.get("/account")).text).value("csrf_token")
    response = await client.post(
        "/account/password",
        data={"current_password": PASSWORD, "new_password": NEW_PASSWORD, "csrf_token": csrf},  # type: ignore[dict-item]
    )
    assert response.status_code == 303 and response.headers["location"] == "/account"
    csrf = Form((await client.get("/account")).text).value("csrf_token")
    wrong = await client.post(
        "/account/email",
        data={"new_email": "b@example.com", "current_password": PASSWORD, "csrf_token": csrf},  # type: ignore[dict-item]
    )
    assert wrong.status_code == 401
    response = await client.post(
        "/account/email",
        data={"new_email": "b@example.com", "current_password": NEW_PASSWORD, "csrf_token": csrf},  # type: ignore[dict-item]
    )
    assert response.status_code == 200 and "Check your new mailbox" in response.text
    token = await mailed_token(mailer, "Confirm your new")
    page = Form((await client.get(f"/email/confirm?token={token}")).text)
    response = await client.post(
        "/email/confirm",
        data={"token": token, "csrf_token": page.value("csrf_token")},  # type: ignore[dict-item]
    )
    assert response.status_code == 200 and "Address changed" in response.text
    assert (await client.get("/auth/whoami")).json()["email"] == "b@example.com"


async def test_account_forms_need_the_session_csrf_token(client: httpx.AsyncClient) -> None:
    """A cookie-authenticated post without csrf_token is refused by the middleware."""
    await sign_in(client)
    response = await client.post(
        "/account/password", data={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert response.status_code == 403


async def test_the_verify_page_confirms_with_a_button(
    client: httpx.AsyncClient, mailer: MemoryMailer
) -> None:
    """/verify-email?token= shows a button; pressing it confirms the address."""
    token = await mailed_token(mailer, "Confirm your e-mail")
    page = Form((await client.get(f"/verify-email?token={token}")).text)
    response = await client.post(
        "/verify-email",
        data={"token": token, "csrf_token": page.value("csrf_token")},  # type: ignore[dict-item]
    )
    assert response.status_code == 200 and "Address confirmed" in response.text
    await sign_in(client)
    assert (await client.get("/auth/whoami")).json()["email_verified"] is True
