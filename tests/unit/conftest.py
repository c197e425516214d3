"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest

from keyturn.accounts.passwords import PasswordHasher


@pytest.fixture
def fast_hasher() -> PasswordHasher:
    """An argon2id hasher with deliberately weak parameters, so tests run fast.

    Never use these parameters outside tests (see ``allow_weak_parameters``).
    """
    return PasswordHasher(memory_kib=1024, time_cost=1, allow_weak_parameters=True)
