"""Schema migrations: automatic for SQLite, deliberate for PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from keyturn.errors import DatabaseNotMigrated
from keyturn.settings import Settings
from keyturn.stores.factory import open_storage
from keyturn.stores.records import Client
from keyturn.stores.sql import SqlStorage, create_engine_for, metadata
from keyturn.stores.sql.client_store import SqlClientStore
from keyturn.stores.sql.migrate import (
    MIGRATIONS_DIR,
    alembic_config,
    current_revision,
    ensure_current,
    head_revision,
    upgrade,
)


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def _schema_diff(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection)
    return list(compare_metadata(context, metadata))


async def test_open_storage_migrates_a_fresh_sqlite_file(tmp_path: Path) -> None:
    """A new SQLite file (in a new directory) is created and migrated to head."""
    path = tmp_path / "nested" / "dir" / "keyturn.db"
    storage = await open_storage(Settings(database_url=sqlite_url(path)))
    try:
        assert path.is_file()
        assert isinstance(storage, SqlStorage)
        assert await current_revision(storage.engine) == head_revision()
        assert await storage.users.list() == []
    finally:
        await storage.close()


def _modes(directory: Path, pattern: str) -> dict[str, int]:
    return {file.name: file.stat().st_mode & 0o777 for file in directory.glob(pattern)}


def _make_file(path: Path, mode: int) -> None:
    path.touch()
    path.chmod(mode)


async def test_new_sqlite_file_is_private_and_existing_mode_is_kept(tmp_path: Path) -> None:
    """A database keyturn creates is mode 0600 (with its WAL files); one the operator
    made is left with the mode they chose."""
    created = tmp_path / "new.db"
    storage = await open_storage(Settings(database_url=sqlite_url(created)))
    try:
        await storage.users.list()
        modes = _modes(tmp_path, "new.db*")
        assert "new.db" in modes
        assert set(modes.values()) == {0o600}, modes
    finally:
        await storage.close()
    existing = tmp_path / "existing.db"
    _make_file(existing, 0o640)
    storage = await open_storage(Settings(database_url=sqlite_url(existing)))
    await storage.close()
    assert _modes(tmp_path, "existing.db") == {"existing.db": 0o640}


async def test_in_memory_sqlite_is_migrated_and_shared() -> None:
    """`:memory:` SQLite is migrated and every connection sees that one database."""
    storage = await open_storage(Settings(database_url="sqlite+aiosqlite:///:memory:"))
    try:
        assert isinstance(storage, SqlStorage)
        assert await current_revision(storage.engine) == head_revision()
        assert await storage.users.list() == []
    finally:
        await storage.close()


async def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path: Path) -> None:
    """Every SQLite connection runs in WAL mode with foreign keys and a busy timeout."""
    engine = create_engine_for(sqlite_url(tmp_path / "k.db"))
    try:
        async with engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert (await pragma("PRAGMA journal_mode")).scalar() == "wal"
            assert (await pragma("PRAGMA foreign_keys")).scalar() == 1
            assert (await pragma("PRAGMA synchronous")).scalar() == 1  # NORMAL
            assert (await pragma("PRAGMA busy_timeout")).scalar() == 5000
    finally:
        await engine.dispose()


async def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    """upgrade() reports the revisions it applied, and nothing the second time."""
    engine = create_engine_for(sqlite_url(tmp_path / "k.db"))
    try:
        assert await current_revision(engine) is None
        applied = await upgrade(engine)
        assert applied[-1] == head_revision()
        assert applied[0] == "0001"
        assert await upgrade(engine) == []
    finally:
        await engine.dispose()


async def test_upgrade_accepts_a_url(tmp_path: Path) -> None:
    """upgrade(url) makes its own engine, migrates, and leaves a current database."""
    url = sqlite_url(tmp_path / "k.db")
    applied = await upgrade(url)
    assert applied[0] == "0001"
    assert applied[-1] == head_revision()
    engine = create_engine_for(url)
    try:
        await ensure_current(engine)
    finally:
        await engine.dispose()


async def test_sqlite_schema_matches_table_definitions(tmp_path: Path) -> None:
    """The migrations create exactly the tables defined in keyturn.stores.sql."""
    engine = create_engine_for(sqlite_url(tmp_path / "k.db"))
    try:
        await upgrade(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(_schema_diff) == []
    finally:
        await engine.dispose()


def _upgrade_to(connection: Connection, revision: str) -> None:
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def _wave_one_client_survives_0007(engine: AsyncEngine) -> None:
    """Migrate to 0006, store a client as wave 1 did, then upgrade to head."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade_to, "0006")
        await connection.execute(
            sa.text(
                "INSERT INTO oauth_clients (id, name, confidential, secret_hash, created_at)"
                " VALUES ('wave-1', 'old app', false, NULL, 1.0)"
            )
        )
    assert "0007" in await upgrade(engine)
    found = await SqlClientStore(engine).get("wave-1")
    assert found == Client("wave-1", "old app", False, 1.0, registered_scopes=None)


async def test_sqlite_wave_one_clients_keep_working_after_0007(tmp_path: Path) -> None:
    """0007 adds oauth_clients.allowed_scopes; a client registered before it is kept
    with NULL, so the default scopes apply to it (#10 item 10c)."""
    engine = create_engine_for(sqlite_url(tmp_path / "k.db"))
    try:
        await _wave_one_client_survives_0007(engine)
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_postgres_wave_one_clients_keep_working_after_0007(
    postgres_database_url: str,
) -> None:
    """The same upgrade on PostgreSQL (#10 item 10c)."""
    engine = create_engine_for(postgres_database_url)
    try:
        await _wave_one_client_survives_0007(engine)
    finally:
        await engine.dispose()


async def _wave_one_client_survives_0009(engine: AsyncEngine) -> None:
    """Migrate to 0008, store a scoped client as 0007 allowed, then upgrade to head:
    the client keeps its scopes, gets the wave-1 grants and no redirect URIs."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade_to, "0008")
        await connection.execute(
            sa.text(
                "INSERT INTO oauth_clients"
                " (id, name, confidential, secret_hash, created_at, allowed_scopes)"
                " VALUES ('wave-1', 'old app', true, :hash, 1.0, 'openid notes:read')"
            ),
            {"hash": "a" * 64},
        )
    assert "0009" in await upgrade(engine)
    found = await SqlClientStore(engine).get("wave-1")
    assert found == Client(
        "wave-1",
        "old app",
        True,
        1.0,
        secret_hash="a" * 64,
        registered_scopes=("openid", "notes:read"),
    )
    assert found.grant_types == ("password", "refresh_token")


async def test_sqlite_wave_one_clients_keep_working_after_0009(tmp_path: Path) -> None:
    """0009 adds the wave-2 client fields; a client registered before it keeps its
    secret and scopes and gets the wave-1 grants (#12)."""
    engine = create_engine_for(sqlite_url(tmp_path / "k.db"))
    try:
        await _wave_one_client_survives_0009(engine)
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_postgres_wave_one_clients_keep_working_after_0009(
    postgres_database_url: str,
) -> None:
    """The same upgrade on PostgreSQL (#12)."""
    engine = create_engine_for(postgres_database_url)
    try:
        await _wave_one_client_survives_0009(engine)
    finally:
        await engine.dispose()


async def test_0009_downgrades_cleanly(tmp_path: Path) -> None:
    """0009 can be undone: downgrading to 0008 drops exactly its columns."""
    from alembic import command

    engine = create_engine_for(sqlite_url(tmp_path / "k.db"))
    try:
        await upgrade(engine)

        def down(connection: Connection) -> list[str]:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "0008")
            return [
                column["name"] for column in sa.inspect(connection).get_columns("oauth_clients")
            ]

        async with engine.begin() as connection:
            columns = await connection.run_sync(down)
        assert columns == [
            "id",
            "name",
            "confidential",
            "secret_hash",
            "created_at",
            "allowed_scopes",
        ]
    finally:
        await engine.dispose()


async def test_sqlite_with_migrate_false_refuses_unmigrated_file(tmp_path: Path) -> None:
    """migrate=False only checks: an empty SQLite file is reported, not migrated."""
    settings = Settings(database_url=sqlite_url(tmp_path / "k.db"))
    with pytest.raises(DatabaseNotMigrated, match="keyturn migrate"):
        await open_storage(settings, migrate=False)


def test_migrations_ship_inside_the_package() -> None:
    """The Alembic scripts live under src/keyturn so the wheel carries them."""
    assert (MIGRATIONS_DIR / "env.py").is_file()
    assert (MIGRATIONS_DIR / "script.py.mako").is_file()
    assert any(MIGRATIONS_DIR.glob("versions/0001_*.py"))
    assert "keyturn" in MIGRATIONS_DIR.parts


def test_head_revision_is_a_known_revision() -> None:
    """head_revision() names the newest bundled revision."""
    assert head_revision() >= "0001"


@pytest.mark.postgres
async def test_postgres_refuses_unmigrated_database(postgres_database_url: str) -> None:
    """An empty PostgreSQL database is not migrated behind the operator's back."""
    settings = Settings(database_url=postgres_database_url)
    with pytest.raises(DatabaseNotMigrated) as caught:
        await open_storage(settings)
    message = str(caught.value)
    assert "keyturn migrate" in message
    assert f"need {head_revision()}" in message
    assert "keyturn-test-password" not in message
    engine = create_engine_for(postgres_database_url)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: sa.inspect(c).get_table_names())
        assert "users" not in tables
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_postgres_opens_after_upgrade(postgres_database_url: str) -> None:
    """After `keyturn migrate` (upgrade) the database is current and opens."""
    applied = await upgrade(postgres_database_url)
    assert (applied[0], applied[-1]) == ("0001", head_revision())
    storage = await open_storage(Settings(database_url=postgres_database_url))
    try:
        assert isinstance(storage, SqlStorage)
        assert await current_revision(storage.engine) == head_revision()
        await storage.ping()
        async with storage.engine.connect() as connection:
            assert await connection.run_sync(_schema_diff) == []
    finally:
        await storage.close()


@pytest.mark.postgres
async def test_postgres_migrate_true_upgrades(postgres_database_url: str) -> None:
    """open_storage(migrate=True) migrates PostgreSQL when asked explicitly."""
    storage = await open_storage(Settings(database_url=postgres_database_url), migrate=True)
    try:
        assert isinstance(storage, SqlStorage)
        assert await current_revision(storage.engine) == head_revision()
    finally:
        await storage.close()


async def test_0014_creates_and_drops_the_id_token_sessions_table(tmp_path: Path) -> None:
    """0014 adds oidc_id_token_sessions; downgrading to its parent removes exactly it."""
    from alembic import command

    engine = create_engine_for(sqlite_url(tmp_path / "k.db"))
    try:
        await upgrade(engine)

        def tables(connection: Connection) -> set[str]:
            return set(sa.inspect(connection).get_table_names())

        def down(connection: Connection) -> set[str]:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "0010")  # 0014 follows 0010 (mail, #14)
            return tables(connection)

        async with engine.begin() as connection:
            before = await connection.run_sync(tables)
            after = await connection.run_sync(down)
        assert before - after == {"oidc_id_token_sessions"}
    finally:
        await engine.dispose()
