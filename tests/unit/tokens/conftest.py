"""Fixtures of the token tests: started Keyturns on memory storage (or a given
one) with a frozen clock and one account, and audit lines captured."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tests.unit.tokens.support import EMAIL, KEK, PASSWORD, MakeKeyturn

from keyturn.accounts.passwords import PasswordHasher
from keyturn.audit import AUDIT_LOGGER
from keyturn.clock import FrozenClock
from keyturn.keys.encryption import KeyEncryptor
from keyturn.runtime import Keyturn
from keyturn.settings import DEFAULT_SCOPES, Settings
from keyturn.stores.memory import MemoryStorage
from keyturn.stores.protocols import Storage


@pytest.fixture
async def make_keyturn(fast_hasher: PasswordHasher) -> AsyncIterator[MakeKeyturn]:
    """Build started Keyturns on memory storage (or a given one) and a frozen clock,
    each with the account EMAIL (registered once per storage)."""
    opened: list[Keyturn] = []

    async def make(
        storage: Storage | None = None, clock: FrozenClock | None = None, **overrides: Any
    ) -> Keyturn:
        # The scopes the tests' first-party password grants ask for.
        overrides.setdefault("default_scopes", [*DEFAULT_SCOPES, "read", "write"])
        # These tests get their tokens from the password grant, off by default (#12).
        overrides.setdefault("password_grant", True)
        settings = Settings(max_sessions_per_user=5, **overrides)
        runtime = Keyturn(
            settings,
            storage=storage or MemoryStorage(),
            clock=clock or FrozenClock(),
            hasher=fast_hasher,
            key_encryptor=KeyEncryptor.from_text(KEK),
        )
        await runtime.start()
        opened.append(runtime)
        if await runtime.storage.users.get_by_email(EMAIL) is None:
            await runtime.accounts.register(EMAIL, PASSWORD)
        return runtime

    yield make
    for runtime in opened:
        await runtime.close()


@pytest.fixture
async def keyturn(make_keyturn: MakeKeyturn) -> Keyturn:
    """A Keyturn on memory storage and a frozen clock, with one account."""
    return await make_keyturn()


@pytest.fixture(autouse=True)
def capture_audit(caplog: pytest.LogCaptureFixture) -> None:
    """Record audit lines in every test."""
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
