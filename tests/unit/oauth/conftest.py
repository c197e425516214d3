"""Fixtures for the keyturn.oauth unit tests."""

from __future__ import annotations

import pytest
from tests.unit.oauth.support import FakeClient

from keyturn.clock import FrozenClock


@pytest.fixture
def client() -> FakeClient:
    """A public client with https and loopback redirect URIs."""
    return FakeClient()


@pytest.fixture
def clock() -> FrozenClock:
    """A clock that moves only when a test says so."""
    return FrozenClock()
