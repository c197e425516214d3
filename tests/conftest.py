"""Session-wide fixtures: a real PostgreSQL server, started only when a test asks.

``postgres_server`` starts one server per pytest(-xdist) worker and stops it at
the end of the session; ``postgres_database_url`` gives each test a fresh empty
database on it. Without the PostgreSQL binaries the tests are skipped locally,
but fail under ``CI=true``: CI must never pass by skipping the real backend.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

try:  # ``tests`` is a rootdir-less folder or a package, depending on the layout
    from services import PostgresServer, ServiceUnavailable, start_postgres
except ImportError:  # pragma: no cover
    from tests.services import PostgresServer, ServiceUnavailable, start_postgres


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run in CI)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL 15 server for this test worker."""
    try:
        import asyncpg  # noqa: F401
    except ImportError:
        _unavailable("asyncpg is not installed (pip install keyturn[postgres])")
    try:
        server = start_postgres()
    except ServiceUnavailable as exc:
        _unavailable(f"PostgreSQL binaries not found or unusable: {exc}")
        raise  # unreachable: _unavailable always raises
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    """SQLAlchemy URL of the server's default ``postgres`` database."""
    return postgres_server.url()


@pytest.fixture
def postgres_database_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for this test (as a ``postgresql+asyncpg`` URL).

    Synchronous on purpose (``psql`` over the server's unix socket), so async
    fixtures may request it with ``request.getfixturevalue``.
    """
    name = f"kt_{uuid.uuid4().hex[:16]}"
    postgres_server.sql(f'CREATE DATABASE "{name}"')
    yield postgres_server.url(name)
    postgres_server.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', check=False)
