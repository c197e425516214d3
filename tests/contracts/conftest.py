"""One ``storage`` fixture parametrized over every implementation.

Every contract test runs against the memory reference, a migrated SQLite file
and a migrated database on a real PostgreSQL server (marked ``postgres``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from keyturn.settings import Settings
from keyturn.stores.base import Storage, UserStore
from keyturn.stores.factory import open_storage
from keyturn.stores.memory import MemoryStorage


@pytest.fixture(
    params=[
        pytest.param("memory"),
        pytest.param("sqlite"),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    """A fresh, empty storage of each kind."""
    if request.param == "memory":
        opened: Storage = MemoryStorage()
    elif request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'keyturn.db'}"
        opened = await open_storage(Settings(database_url=url))
    else:
        url = request.getfixturevalue("postgres_database_url")
        opened = await open_storage(Settings(database_url=url), migrate=True)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def users(storage: Storage) -> UserStore:
    """The user store of each storage kind."""
    return storage.users
