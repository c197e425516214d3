"""Open the configured storage, checked and (where safe) migrated.

SQLite is the embedded default: one process owns the file, so keyturn migrates
it on start-up. A PostgreSQL database is shared by many servers, so migrating
is an operator's deliberate step (``keyturn migrate``) and a server refuses to
start against an older schema instead of racing its peers to alter it.
"""

from __future__ import annotations

import os
from pathlib import Path

from keyturn.errors import ConfigurationError, StoreUnavailable
from keyturn.settings import Settings
from keyturn.stores.protocols import Storage
from keyturn.stores.sql import SqlStorage, create_engine_for
from keyturn.stores.sql.migrate import ensure_current, upgrade


async def open_storage(settings: Settings, *, migrate: bool | None = None) -> Storage:
    """Connect to ``settings.database_url`` and make sure the schema is current.

    With ``settings.redis_url`` the result keeps users, keys, refresh families and
    clients in the database and moves sessions and the revocation log to Redis
    (:class:`~keyturn.stores.redis.SqlRedisStorage`); Redis must answer too.

    ``migrate=None`` migrates SQLite (file or ``:memory:``; a missing parent
    directory is created) and only checks PostgreSQL; ``True`` always migrates;
    ``False`` always only checks.

    Raises:
        StoreUnavailable: the database (or Redis) cannot be reached; the one-line
            message names it with the password masked.
        DatabaseNotMigrated: the schema is behind and migrating was not allowed.
        ConfigurationError: the schema is newer than this keyturn knows, or
            ``redis_url`` is set without redis-py installed.
    """
    should_migrate = settings.is_sqlite if migrate is None else migrate
    path = settings.sqlite_path
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _create_private(path)
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot create {settings.safe_database_url}: {exc.strerror}"
            ) from None
    storage = SqlStorage(create_engine_for(settings.database_url))
    try:
        await storage.ping()
        if should_migrate:
            await upgrade(storage.engine)
        else:
            await ensure_current(storage.engine)
        if settings.redis_url is not None:
            return await _with_redis(storage, settings.redis_url)
    except BaseException:
        await storage.close()
        raise
    return storage


async def _with_redis(sql: SqlStorage, url: str) -> Storage:
    """The SQL storage with its sessions and revocations moved to Redis."""
    try:
        from keyturn.stores.redis import RedisConnection, SqlRedisStorage
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] != "redis":
            raise
        raise ConfigurationError(
            "--redis-url needs redis-py, which is not installed: pip install 'keyturn[redis]'"
        ) from None
    connection = RedisConnection(url)
    try:
        await connection.ping()
        await connection.check_eviction_policy()
    except BaseException:
        await connection.close()
        raise
    return SqlRedisStorage(sql, connection)


def _create_private(path: Path) -> None:
    """Create a new SQLite file readable by its owner only (it holds password
    hashes and encrypted keys); SQLite gives its -wal and -shm files the same
    mode. An existing file is left as it is."""
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(descriptor)
