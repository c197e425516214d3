"""Migration 0010 (account tokens, ``users.email_verified``, #14) keeps existing
accounts, reverts and re-applies cleanly, on SQLite and PostgreSQL."""

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
from keyturn.stores.sql.migrate import alembic_config, current_revision, upgrade

#: The revision 0010 follows (main's head when #14 was merged in).
BEFORE = "0013"


def _migrate(connection: Connection, revision: str, *, down: bool = False) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    (command.downgrade if down else command.upgrade)(config, revision)


def _columns(connection: Connection, table: str) -> set[str]:
    return {column["name"] for column in sa.inspect(connection).get_columns(table)}


def _tables(connection: Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names())


def _diff(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


async def _round_trip(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_migrate, BEFORE)
        await connection.execute(
            sa.text(
                "INSERT INTO users (id, email, email_key, password_hash, roles, disabled,"
                " created_at) VALUES ('u1', 'a@b.c', 'a@b.c', 'x', '[]', false, 1.0)"
            )
        )
    await upgrade(engine)
    async with engine.begin() as connection:
        verified = await connection.execute(sa.text("SELECT email_verified FROM users"))
        assert verified.scalar() in (False, 0)  # existing accounts start unverified
        await connection.execute(
            sa.text(
                "INSERT INTO account_tokens (token_hash, user_id, purpose, created_at,"
                " expires_at) VALUES ('h', 'u1', 'password_reset', 1.0, 2.0)"
            )
        )
        await connection.run_sync(_migrate, BEFORE, down=True)
    assert await current_revision(engine) == BEFORE
    async with engine.connect() as connection:
        assert "account_tokens" not in await connection.run_sync(_tables)
        assert "email_verified" not in await connection.run_sync(_columns, "users")
        assert (await connection.execute(sa.text("SELECT count(*) FROM users"))).scalar() == 1
    await upgrade(engine)
    async with engine.connect() as connection:
        assert await connection.run_sync(_diff) == []


async def test_sqlite_0010_keeps_accounts_and_round_trips(tmp_path: Path) -> None:
    """On SQLite: existing users become unverified, downgrade drops only 0010's parts."""
    engine = create_engine_for(f"sqlite+aiosqlite:///{tmp_path / 'k.db'}")
    try:
        await _round_trip(engine)
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_postgres_0010_keeps_accounts_and_round_trips(postgres_database_url: str) -> None:
    """The same round trip on PostgreSQL."""
    engine = create_engine_for(postgres_database_url)
    try:
        await _round_trip(engine)
    finally:
        await engine.dispose()
