"""Two instances on one database share the outbox (#14): every queued message is
delivered exactly once, whichever instance's dispatcher leases it."""

from __future__ import annotations

import asyncio
import contextlib
import time

from keyturn.accounts.passwords import PasswordHasher
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
