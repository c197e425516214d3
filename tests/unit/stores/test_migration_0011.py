"""Migration 0011 (``sessions.amr``, #15): old sessions read as password sign-ins,
and it reverts and re-applies cleanly on SQLite and PostgreSQL."""

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
from keyturn.stores.sql.session_store import SqlSessionStore


def _previous() -> str:
    """The revision 0011 follows (re-chained at merges, so read, not written here)."""
    from alembic.script import ScriptDirectory

    down = ScriptDirectory.from_config(alembic_config()).get_revision("0011").down_revision
    assert isinstance(down, str)
    return down


def _move_to(connection: Connection, revision: str, *, down: bool) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    (command.downgrade if down else command.upgrade)(config, revision)


def _columns(connection: Connection) -> set[str]:
    return {column["name"] for column in sa.inspect(connection).get_columns("sessions")}


def _diff(connection: Connection) -> list[object]:
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


async def _round_trip(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(lambda c: _move_to(c, _previous(), down=False))
        await connection.execute(
            sa.text(
                "INSERT INTO users (id, email, email_key, password_hash, roles, disabled,"
                " created_at) VALUES ('u1', 'a@b.c', 'a@b.c', 'x', '[]', false, 1.0)"
            )
        )
        await connection.execute(
            sa.text(
                "INSERT INTO sessions (id_hash, handle, user_id, created_at, last_seen_at,"
                " idle_timeout, expires_at, auth_time, remember) VALUES"
                " (:id_hash, 'h1', 'u1', 1.0, 1.0, 60, 9e9, 1.0, false)"
            ),
            {"id_hash": "a" * 64},
        )
        await connection.run_sync(lambda c: _move_to(c, "0011", down=False))
    old = await SqlSessionStore(engine).get("a" * 64)
    assert old is not None and old.amr == ("pwd",)
    async with engine.begin() as connection:
        await connection.run_sync(lambda c: _move_to(c, _previous(), down=True))
    assert await current_revision(engine) == _previous()
    async with engine.connect() as connection:
        assert "amr" not in await connection.run_sync(_columns)
    await upgrade(engine)
    async with engine.connect() as connection:
        assert await connection.run_sync(_diff) == []


async def test_sqlite_0011_adds_amr_and_reverts(tmp_path: Path) -> None:
    """On SQLite, sessions from before 0011 read as amr ["pwd"]; downgrade drops
    only the column (the session stays), upgrade matches the table definitions."""
    engine = create_engine_for(f"sqlite+aiosqlite:///{tmp_path / 'k.db'}")
    try:
        await _round_trip(engine)
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_postgres_0011_adds_amr_and_reverts(postgres_database_url: str) -> None:
    """The same round trip on PostgreSQL."""
    engine = create_engine_for(postgres_database_url)
    try:
        await _round_trip(engine)
    finally:
        await engine.dispose()
