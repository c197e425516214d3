"""Migration 0008 (the wave-2 tables) applies, reverts and re-applies cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from keyturn.stores.sql import create_engine_for, metadata
from keyturn.stores.sql.migrate import alembic_config, current_revision, head_revision, upgrade
from keyturn.stores.sql.schema import WAVE2_TABLES

WAVE2_NAMES = {table.name for table in WAVE2_TABLES}


def _downgrade_to(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


def _tables(connection: Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names())


def _diff(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


async def _round_trip(engine: AsyncEngine) -> None:
    await upgrade(engine)
    async with engine.connect() as connection:
        assert await connection.run_sync(_tables) >= WAVE2_NAMES
    async with engine.begin() as connection:
        await connection.execute(
            sa.text(
                "INSERT INTO users (id, email, email_key, password_hash, roles, disabled,"
                " created_at) VALUES ('u1', 'a@b.c', 'a@b.c', 'x', '[]', false, 1.0)"
            )
        )
        await connection.run_sync(_downgrade_to, "0007")
    assert await current_revision(engine) == "0007"
    async with engine.connect() as connection:
        remaining = await connection.run_sync(_tables)
        assert not WAVE2_NAMES & remaining
        assert (await connection.execute(sa.text("SELECT count(*) FROM users"))).scalar() == 1
    reapplied = await upgrade(engine)
    assert (reapplied[0], reapplied[-1]) == ("0008", head_revision())
    async with engine.connect() as connection:
        assert await connection.run_sync(_diff) == []


async def test_sqlite_0008_downgrades_and_upgrades_again(tmp_path: Path) -> None:
    """On SQLite 0008 creates the wave-2 tables, drops only them on downgrade (users
    are kept), and re-applies to a schema that matches the table definitions."""
    engine = create_engine_for(f"sqlite+aiosqlite:///{tmp_path / 'k.db'}")
    try:
        await _round_trip(engine)
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_postgres_0008_downgrades_and_upgrades_again(postgres_database_url: str) -> None:
    """The same round trip on PostgreSQL."""
    engine = create_engine_for(postgres_database_url)
    try:
        await _round_trip(engine)
    finally:
        await engine.dispose()
