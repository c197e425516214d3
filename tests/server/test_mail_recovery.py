"""Account recovery over HTTP with a real SMTP server (aiosmtpd on loopback, #14):
forgot password to a dead old session, the same answer and timing for unknown
addresses, an SMTP outage, a silent SMTP server, and no secret link in any log."""

from __future__ import annotations

import asyncio
import logging
import re
import statistics
import time
from collections.abc import AsyncIterator, Callable
from email.message import Message
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from tests.server.conftest import MakeClient
from tests.server.http_support import BASE
from tests.unit.mail.smtp_support import (
    Recorder,
    StartServer,
    free_port,
    silent_server,
    smtp_server,
)

from keyturn.runtime import Keyturn
from keyturn.settings import Settings
from keyturn.web.app import create_app
from keyturn.web.routes.recovery import ACCEPTED_BODY

__all__ = ["silent_server", "smtp_server"]

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"
EMAIL = "a@example.com"
_TOKEN = re.compile(r"token=([A-Za-z0-9_-]{43})")
#: Fast retries and polls so an outage test takes a second, not minutes.
QUICK = {"mail_retry_base": 0.2, "mail_retry_max": 0.5, "outbox_poll_interval": 0.2}


def mail_settings(url: str, **extra: Any) -> Settings:
    return Settings(
        database_url="sqlite+aiosqlite:///:memory:",
        issuer=BASE,
        smtp_url=url,
        mail_from="keyturn <auth@example.com>",
        **{**QUICK, **extra},
    )


async def wait_for(predicate: Callable[[], bool], within: float = 10.0) -> None:
    """Poll a real service until ``predicate`` holds (the outbox works in the background)."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the mail")
        await asyncio.sleep(0.02)


def token_of(message: Message) -> str:
    found = _TOKEN.search(message.as_string())
    assert found is not None
    return found.group(1)


def with_subject(recorder: Recorder, text: str) -> list[Message]:
    return [message for message in recorder.messages if text in str(message["Subject"])]


@pytest.fixture
def open_app(
    make_client: MakeClient, make_keyturn: Callable[..., Keyturn]
) -> Callable[[Settings], Any]:
    """``async with open_app(settings) as (make_browser, keyturn)``: the app mailing
    through its settings (SMTP), and a way to open more browsers on it."""
    import contextlib

    @contextlib.asynccontextmanager
    async def opened(settings: Settings, **overrides: Any) -> AsyncIterator[Any]:
        keyturn = make_keyturn(settings, mailer=None, **overrides)
        app = create_app(settings, keyturn=keyturn)

        def browser() -> Any:
            return make_client(app=app, base_url=BASE)

        async with browser() as first:
            yield first, browser, keyturn

    return opened


async def register_and_login(client: httpx.AsyncClient) -> None:
    response = await client.post("/auth/register", json={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 201, response.text
    response = await client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert response.status_code == 200, response.text


async def test_forgot_password_through_smtp_ends_the_old_session(
    open_app: Any, smtp_server: StartServer, database_url: str
) -> None:
    """202 with the one body; the mail arrives over SMTP; its link sets the password
    (204); the old session is dead; the link works once (400 invalid_reset_token)."""
    server = smtp_server()
    settings = mail_settings(server.url()).model_copy(update={"database_url": database_url})
    async with open_app(settings, storage=None) as (client, _, _):
        await register_and_login(client)
        assert (await client.get("/auth/whoami")).status_code == 200
        response = await client.post("/auth/password/forgot", json={"email": EMAIL.upper()})
        assert (response.status_code, response.json()) == (202, ACCEPTED_BODY)
        await wait_for(lambda: bool(with_subject(server.recorder, "Reset your")))
        [mail] = with_subject(server.recorder, "Reset your")
        assert mail["To"] == EMAIL and mail["From"] == "keyturn <auth@example.com>"
        token = token_of(mail)
        assert f"{BASE}/password/reset?token={token}" in mail.as_string()
        body = {"token": token, "new_password": NEW_PASSWORD}
        response = await client.post("/auth/password/reset", json=body)
        assert response.status_code == 204, response.text
        assert (await client.get("/auth/whoami")).status_code == 401
        again = await client.post("/auth/password/reset", json=body)
        assert (again.status_code, again.json()["error"]) == (400, "invalid_reset_token")
        old = await client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
        assert old.status_code == 401
        new = await client.post("/auth/login", json={"email": EMAIL, "password": NEW_PASSWORD})
        assert new.status_code == 200
        await wait_for(lambda: bool(with_subject(server.recorder, "password was reset")))


async def test_unknown_addresses_get_the_same_answer_in_the_same_time(
    open_app: Any, smtp_server: StartServer
) -> None:
    """Known and unknown addresses: the same 202 body, and median times within 5 ms
    of each other (the request only queues a job; no user lookup, no hashing)."""
    server = smtp_server()
    settings = mail_settings(server.url(), reset_max_per_address=1000, reset_max_per_client=1000)
    async with open_app(settings) as (client, _, _):
        await register_and_login(client)
        timings: dict[str, list[float]] = {"known": [], "unknown": []}
        for round_ in range(40):
            for label, address in (("known", EMAIL), ("unknown", f"nobody{round_}@example.com")):
                started = time.perf_counter()
                response = await client.post("/auth/password/forgot", json={"email": address})
                timings[label].append(time.perf_counter() - started)
                assert (response.status_code, response.json()) == (202, ACCEPTED_BODY)
        known, unknown = (statistics.median(timings[key]) for key in ("known", "unknown"))
        assert abs(known - unknown) < 0.005, (known, unknown)
        await wait_for(lambda: len(with_subject(server.recorder, "Reset your")) == 40)
        assert {message["To"] for message in server.recorder.messages} == {EMAIL}


async def test_an_smtp_outage_delays_the_mail_but_not_the_answer(open_app: Any) -> None:
    """SMTP down: the request still answers 202 at once; the mail goes out once the
    server is back (retried from the outbox)."""
    port = free_port()
    settings = mail_settings(f"smtp://127.0.0.1:{port}", smtp_timeout=1)
    async with open_app(settings) as (client, _, keyturn):
        await register_and_login(client)
        started = time.perf_counter()
        response = await client.post("/auth/password/forgot", json={"email": EMAIL})
        assert response.status_code == 202
        assert time.perf_counter() - started < 0.5
        await asyncio.sleep(0.5)  # a few failed attempts
        recorder = Recorder()
        controller = Controller(recorder, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            await wait_for(lambda: bool(with_subject(recorder, "Reset your")), within=15)
        finally:
            controller.stop()
        assert keyturn.mail.dispatcher is not None


async def test_a_silent_smtp_server_never_slows_a_request(
    open_app: Any, silent_server: int
) -> None:
    """An SMTP server that accepts and never answers holds up the outbox, not the
    forgot-password request."""
    settings = mail_settings(f"smtp://127.0.0.1:{silent_server}", smtp_timeout=5)
    async with open_app(settings) as (client, _, _):
        for _ in range(3):
            started = time.perf_counter()
            response = await client.post("/auth/password/forgot", json={"email": EMAIL})
            assert response.status_code == 202
            assert time.perf_counter() - started < 0.5


async def test_no_secret_link_reaches_a_log(
    open_app: Any, smtp_server: StartServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Through request, queue, delivery and reset, no log line holds the reset
    token, the verification token or the recipient's address."""
    caplog.set_level(logging.DEBUG)
    server = smtp_server()
    async with open_app(mail_settings(server.url())) as (client, _, _):
        await register_and_login(client)
        await client.post("/auth/password/forgot", json={"email": EMAIL})
        await wait_for(lambda: bool(with_subject(server.recorder, "Reset your")))
        await wait_for(lambda: bool(with_subject(server.recorder, "Confirm your e-mail")))
        reset = token_of(with_subject(server.recorder, "Reset your")[0])
        verify = token_of(with_subject(server.recorder, "Confirm your e-mail")[0])
        body = {"token": reset, "new_password": NEW_PASSWORD}
        assert (await client.post("/auth/password/reset", json=body)).status_code == 204
    # Every log line but the test SMTP server's own (aiosmtpd logs what it receives).
    text = "\n".join(
        record.getMessage() for record in caplog.records if not record.name.startswith("mail.")
    )
    assert "mail: sent password_reset" in text  # the lines exist, without secrets
    assert reset not in text and verify not in text
    queued = re.search(r"queued password_reset for (rcpt-[0-9a-f]{12})", text)
    delivered = re.search(r"sent password_reset to (rcpt-[0-9a-f]{12})", text)
    assert queued and delivered and queued.group(1) == delivered.group(1)  # one tag per person
    assert EMAIL not in re.sub(r'"email":"[^"]*"', "", text)  # only the audit log names it


async def test_whoami_reports_email_verified_after_the_link(
    open_app: Any, smtp_server: StartServer
) -> None:
    """Registration mails a link; POST /auth/email/verify makes whoami say verified."""
    server = smtp_server()
    async with open_app(mail_settings(server.url())) as (client, _, _):
        await register_and_login(client)
        assert (await client.get("/auth/whoami")).json()["email_verified"] is False
        await wait_for(lambda: bool(with_subject(server.recorder, "Confirm your e-mail")))
        token = token_of(with_subject(server.recorder, "Confirm your e-mail")[0])
        response = await client.post("/auth/email/verify", json={"token": token})
        assert response.status_code == 204, response.text
        assert (await client.get("/auth/whoami")).json()["email_verified"] is True
        again = await client.post("/auth/email/verify", json={"token": token})
        assert (again.status_code, again.json()["error"]) == (400, "invalid_verification_token")


async def test_require_verified_email_is_403_after_a_correct_password(
    open_app: Any, smtp_server: StartServer
) -> None:
    """--require-verified-email: right password 403 email_not_verified, wrong one 401."""
    server = smtp_server()
    async with open_app(mail_settings(server.url(), require_verified_email=True)) as (
        client,
        _,
        _,
    ):
        response = await client.post("/auth/register", json={"email": EMAIL, "password": PASSWORD})
        assert response.status_code == 201
        wrong = await client.post(
            "/auth/login", json={"email": EMAIL, "password": "nope nope nope"}
        )
        assert wrong.status_code == 401
        right = await client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
        assert (right.status_code, right.json()["error"]) == (403, "email_not_verified")
        # The sign-in page says so on the page, not as a JSON body, and signs no one in.
        from tests.server.test_pages import submit_login

        page = await submit_login(client, EMAIL, PASSWORD)
        assert page.status_code == 403
        assert page.headers["content-type"].startswith("text/html")
        assert "confirm your e-mail address" in page.text.lower()
        assert (await client.get("/auth/whoami")).status_code == 401


async def test_email_change_over_http(open_app: Any, smtp_server: StartServer) -> None:
    """POST /auth/email (202) mails the new address; /auth/email/confirm (204)
    moves the account; the old address gets a notice."""
    server = smtp_server()
    async with open_app(mail_settings(server.url())) as (client, _, _):
        await register_and_login(client)
        csrf = (await client.get("/auth/whoami")).headers["x-csrf-token"]
        body = {"new_email": "new@example.com", "current_password": PASSWORD}
        response = await client.post("/auth/email", json=body, headers={"X-CSRF-Token": csrf})
        assert response.status_code == 202, response.text
        await wait_for(lambda: bool(with_subject(server.recorder, "Confirm your new")))
        [confirm] = with_subject(server.recorder, "Confirm your new")
        assert confirm["To"] == "new@example.com"
        response = await client.post("/auth/email/confirm", json={"token": token_of(confirm)})
        assert response.status_code == 204, response.text
        whoami = (await client.get("/auth/whoami")).json()
        assert (whoami["email"], whoami["email_verified"]) == ("new@example.com", True)
        await wait_for(lambda: bool(with_subject(server.recorder, "was changed")))
        [notice] = with_subject(server.recorder, "was changed")
        assert notice["To"] == EMAIL


async def test_forgot_password_is_throttled_per_address(
    open_app: Any, smtp_server: StartServer
) -> None:
    """Past --reset-max-per-address requests: 429 too_many_attempts with Retry-After."""
    server = smtp_server()
    async with open_app(mail_settings(server.url(), reset_max_per_address=2)) as (client, _, _):
        for _ in range(2):
            response = await client.post("/auth/password/forgot", json={"email": "x@example.com"})
            assert response.status_code == 202
        response = await client.post("/auth/password/forgot", json={"email": "x@example.com"})
        assert (response.status_code, response.json()["error"]) == (429, "too_many_attempts")
        assert int(response.headers["retry-after"]) > 0


async def test_every_change_of_second_factors_mails_the_owner(
    open_app: Any, smtp_server: StartServer
) -> None:
    """SPEC: MFA changes send a notice to the account's address. Setting up an
    authenticator app, new recovery codes and removing the app each mail one
    "sign-in methods changed" notice that says what changed, so a factor added
    from a stolen session does not go unseen."""
    import pyotp

    server = smtp_server()
    subject = "sign-in methods"
    async with open_app(mail_settings(server.url())) as (client, _, _):
        await register_and_login(client)
        csrf = {"X-CSRF-Token": (await client.get("/auth/whoami")).headers["x-csrf-token"]}
        secret = (await client.post("/auth/mfa/totp", headers=csrf)).json()["secret"]
        assert not with_subject(server.recorder, subject)  # nothing changed yet
        code = pyotp.TOTP(secret).now()
        response = await client.post("/auth/mfa/totp/confirm", json={"code": code}, headers=csrf)
        assert response.status_code == 200, response.text
        response = await client.post("/auth/mfa/recovery-codes", headers=csrf)
        assert response.status_code == 200, response.text
        response = await client.delete("/auth/mfa/totp", headers=csrf)
        assert response.status_code == 204, response.text
        await wait_for(lambda: len(with_subject(server.recorder, subject)) == 3)
        notices = with_subject(server.recorder, subject)
        assert {notice["To"] for notice in notices} == {EMAIL}
        bodies = sorted(notice.as_string() for notice in notices)
        assert any("authenticator app was set up" in body for body in bodies)
        assert any("new set of recovery codes" in body for body in bodies)
        assert any("authenticator app was removed" in body for body in bodies)
