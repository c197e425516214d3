"""Fixtures for driving the ``keyturn`` command line in-process (the ``run``
fixture itself is shared, in tests/conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("KEYTURN_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The CLI tests' one SQLite file (``cli.db``, next to its ``.kek``), instead
    of the shared SQLite-and-PostgreSQL ``database_url``: the CLI on PostgreSQL is
    covered by the cluster and serve tests."""
    return f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
