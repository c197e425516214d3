"""Apply and check the database schema (Alembic, run programmatically).

The migration scripts ship inside the package (``stores/sql/migrations``), so no
``alembic.ini`` is needed: :func:`alembic_config` points Alembic at them. SQLite
databases are migrated on start-up; a PostgreSQL database shared by many
servers is migrated once, on purpose, with ``keyturn migrate``, and every
server refuses to start against an older schema (:func:`ensure_current`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from keyturn.errors import ConfigurationError, DatabaseNotMigrated
from keyturn.stores.sql import connect, create_engine_for

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    """An Alembic :class:`~alembic.config.Config` for keyturn's bundled scripts."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest revision this version of keyturn knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise RuntimeError("no migration revisions found")
    return head


def _upgrade_sync(connection: Connection) -> list[str]:
    from alembic import command

    config = alembic_config()
    applied: list[str] = []
    config.attributes["connection"] = connection
    config.attributes["applied"] = applied
    command.upgrade(config, "head")
    return applied


async def upgrade(engine_or_url: AsyncEngine | str) -> list[str]:
    """Apply every pending migration, oldest first.

    Accepts an engine (left open) or a URL (an engine is made and disposed).
    Idempotent: an up-to-date database gets no changes.

    Returns:
        The revisions applied, oldest first; empty when already at head.

    Raises:
        StoreUnavailable: the database cannot be reached.
    """
    if isinstance(engine_or_url, str):
        engine = create_engine_for(engine_or_url)
        try:
            return await upgrade(engine)
        finally:
            await engine.dispose()
    async with _sqlite_file_lock(engine_or_url), connect(engine_or_url, write=True) as connection:
        return await connection.run_sync(_upgrade_sync)


@contextlib.asynccontextmanager
async def _sqlite_file_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """Hold an exclusive ``flock`` on a SQLite database file while migrating, so
    processes starting on one new file together (``--workers``, a CLI command
    beside a starting server) migrate one after the other instead of all
    creating the tables. The lock is taken on ``<file>-migrate.lock``, never on
    the database file, whose POSIX locks belong to SQLite. Other databases
    (PostgreSQL: migrated by the operator's one ``keyturn migrate``) pass."""
    database = engine.url.database
    if engine.url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        yield
        return
    # A lock file of its own: closing any descriptor of the database file itself
    # would drop SQLite's POSIX locks held by this process's open connections.
    try:
        descriptor = os.open(database + "-migrate.lock", os.O_RDONLY | os.O_CREAT, 0o600)
    except OSError:  # no such directory, no permission: SQLite will report it
        yield
        return
    try:
        await asyncio.to_thread(fcntl.flock, descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # closing the descriptor releases the lock


def _current_sync(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None for an unmigrated database.

    Raises:
        StoreUnavailable: the database cannot be reached.
    """
    async with connect(engine) as connection:
        return await connection.run_sync(_current_sync)


async def ensure_current(engine: AsyncEngine) -> None:
    """Refuse to work against a schema older (or newer) than this keyturn's.

    Raises:
        DatabaseNotMigrated: the database is behind; run ``keyturn migrate``.
        ConfigurationError: the database is at a revision this keyturn does not
            know (written by a newer version).
        StoreUnavailable: the database cannot be reached.
    """
    current = await current_revision(engine)
    head = head_revision()
    if current == head:
        return
    scripts = ScriptDirectory.from_config(alembic_config())
    known = {script.revision for script in scripts.walk_revisions()}
    if current is not None and current not in known:
        raise ConfigurationError(
            f"database is at revision {current}, unknown to this keyturn (newest {head}):"
            " upgrade keyturn"
        )
    raise DatabaseNotMigrated(
        f"database is not migrated (at {current or 'base'}, need {head}): run `keyturn migrate`"
    )
