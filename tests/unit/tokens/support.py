"""Helpers shared by the token tests that run through a whole Keyturn
(``test_grants``, ``test_bearer``, ``test_revoke``, ``test_introspect``); their
fixtures are in this folder's ``conftest.py``."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from keyturn.audit import AUDIT_LOGGER
from keyturn.clock import FrozenClock
from keyturn.keys.encryption import generate_kek
from keyturn.runtime import Keyturn
from keyturn.tokens.grants import TokenGrants, TokenResponse

EMAIL = "alice@example.org"
PASSWORD = "correct horse battery"
IP = "192.0.2.10"
UA = "pytest-client/1.0"
#: One key-encryption key for every Keyturn of a run, so instances share storage.
KEK = generate_kek()

MakeKeyturn = Callable[..., Awaitable[Keyturn]]


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, Any]]:
    """The audit events called ``name`` recorded so far."""
    found = [json.loads(r.getMessage()) for r in caplog.records if r.name == AUDIT_LOGGER]
    return [event for event in found if event["event"] == name]


def clock_of(keyturn: Keyturn) -> FrozenClock:
    """The frozen clock of a test Keyturn."""
    assert isinstance(keyturn.clock, FrozenClock)
    return keyturn.clock


async def sign_in(grants: TokenGrants, **kwargs: Any) -> TokenResponse:
    """A password grant for the test account."""
    return await grants.password_grant(EMAIL, PASSWORD, ip=IP, user_agent=UA, **kwargs)
