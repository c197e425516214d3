"""Two instances on one database (#14): every queued message is delivered exactly
once, whichever instance's dispatcher leases it, and a password reset on one ends
the user's tokens and sessions on the other."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from email.message import Message

import pytest

from keyturn.accounts.passwords import PasswordHasher
from keyturn.errors import InvalidToken, NotAuthenticated
from keyturn.keys.encryption import KeyEncryptor
from keyturn.mail.compose import MailKind
from keyturn.mail.mailer import MemoryMailer
from keyturn.runtime import Keyturn
from keyturn.settings import Settings

MESSAGES = 30


async def test_two_instances_deliver_each_queued_message_once(database_url: str) -> None:
    """30 messages queued on instance A, both dispatchers polling the shared queue:
    30 deliveries in all and no address twice (leases)."""
    settings = Settings(database_url=database_url, outbox_poll_interval=0.05)
    encryptor = KeyEncryptor(b"k" * 32)  # both instances open each other's jobs
    hasher = PasswordHasher(memory_kib=1024, time_cost=1, allow_weak_parameters=True)
    mailers = [MemoryMailer(), MemoryMailer()]
    instances = [
        Keyturn(settings, hasher=hasher, key_encryptor=encryptor, mailer=mailer)
        for mailer in mailers
    ]
    async with contextlib.AsyncExitStack() as stack:
        for instance in instances:
            await stack.enter_async_context(instance.lifespan())
        for number in range(MESSAGES):
            await instances[0].recovery.mail(MailKind.TEST_MESSAGE, f"u{number}@example.com", {})
        deadline = time.monotonic() + 20
        while sum(len(mailer.sent) for mailer in mailers) < MESSAGES:
            assert time.monotonic() < deadline, [len(mailer.sent) for mailer in mailers]
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # a duplicate would show up now
    recipients = [str(message["To"]) for mailer in mailers for message in mailer.sent]
    assert sorted(recipients) == sorted(f"u{number}@example.com" for number in range(MESSAGES))


async def test_a_reset_on_one_instance_ends_tokens_and_sessions_on_the_other(
    sqlite_url: str,
) -> None:
    """A password reset on instance A: instance B refuses the user's access token and
    session soon after (the change reaches it on the fan-out bus), never the old way."""
    settings = Settings(database_url=sqlite_url, outbox_poll_interval=0.05)
    encryptor = KeyEncryptor(b"k" * 32)
    hasher = PasswordHasher(memory_kib=1024, time_cost=1, allow_weak_parameters=True)
    # Either instance's dispatcher may lease the reset mail from the shared outbox.
    mailers = [MemoryMailer(), MemoryMailer()]
    first = Keyturn(settings, hasher=hasher, key_encryptor=encryptor, mailer=mailers[0])
    second = Keyturn(settings, hasher=hasher, key_encryptor=encryptor, mailer=mailers[1])
    async with first.lifespan(), second.lifespan():
        user = await first.accounts.register("a@example.com", "correct horse battery")
        _, session = await second.auth.sign_in(
            "a@example.com", "correct horse battery", ip="192.0.2.1", user_agent=None
        )
        token, _ = second.token_issuer.issue(user.id, sid=session.session.handle)
        await second.bearer.authenticate(token)
        await second.sessions.validate(session.secret)  # both cached on B now
        await first.recovery.request_password_reset("a@example.com", ip="192.0.2.1")
        deadline = time.monotonic() + 10

        def sent() -> list[Message]:
            return [message for mailer in mailers for message in mailer.sent]

        while not any("Reset your" in str(message["Subject"]) for message in sent()):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        [reset] = [m for m in sent() if "Reset your" in str(m["Subject"])]
        found = re.search(r"token=([A-Za-z0-9_-]{43})", reset.as_string())
        assert found is not None
        await asyncio.sleep(0.01)  # the token is older than the reset's cut-off
        await first.recovery.reset_password(found.group(1), "a brand new passphrase", ip=None)
        deadline = time.monotonic() + 10
        while True:
            try:
                await second.bearer.authenticate(token)
            except InvalidToken:
                break
            assert time.monotonic() < deadline, "B still accepts the old access token"
            await asyncio.sleep(0.05)
        with pytest.raises(NotAuthenticated):
            await second.sessions.validate(session.secret)
