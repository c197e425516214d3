"""A started Keyturn on memory stores, a frozen clock and a memory mailer, with
helpers that drive the outbox by hand (no background task, no sleeping)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from email.message import EmailMessage

import pytest

from keyturn.accounts.passwords import PasswordHasher
from keyturn.clock import FrozenClock
from keyturn.mail.mailer import MemoryMailer
from keyturn.runtime import Keyturn
from keyturn.settings import Settings
from keyturn.stores.memory import MemoryStorage

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"
_TOKEN = re.compile(r"token=([A-Za-z0-9_-]{43})")


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture
def mailer() -> MemoryMailer:
    return MemoryMailer()


@pytest.fixture
def settings() -> Settings:
    return Settings(database_url="sqlite+aiosqlite:///:memory:", issuer="https://id.example")


@pytest.fixture
async def kt(
    settings: Settings, clock: FrozenClock, mailer: MemoryMailer, fast_hasher: PasswordHasher
) -> AsyncIterator[Keyturn]:
    keyturn = Keyturn(
        settings, storage=MemoryStorage(), clock=clock, hasher=fast_hasher, mailer=mailer
    )
    await keyturn.start()
    try:
        yield keyturn
    finally:
        await keyturn.close()


async def deliver(keyturn: Keyturn) -> None:
    """Run the dispatcher until the queue has nothing due."""
    while await keyturn.mail.dispatcher.run_once():
        pass


def body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def token_in(message: EmailMessage) -> str:
    """The account token in the message's link."""
    found = _TOKEN.search(body(message))
    assert found is not None, body(message)
    return found.group(1)


def sent(mailer: MemoryMailer, kind_subject: str) -> list[EmailMessage]:
    """The messages whose subject contains ``kind_subject``."""
    return [message for message in mailer.sent if kind_subject in str(message["Subject"])]
