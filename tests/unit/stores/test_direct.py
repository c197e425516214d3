"""The refresh grant's plain SQL path on SQLite (keyturn.stores.sql.direct): reads
without a thread hop that still never block the event loop on a lock, one
writer thread, and failing closed."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from keyturn.errors import StoreUnavailable
from keyturn.stores.sql import create_engine_for
from keyturn.stores.sql.direct import PostgresDirect, SqliteDirect


def rollback_journal_db(path: Path) -> None:
    """A database file not in WAL mode, where a writer's lock does block readers."""
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode=DELETE")
        setup.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)")
        setup.execute("INSERT INTO t VALUES ('a', 'one')")
    setup.close()


async def test_a_busy_read_waits_in_the_writer_thread_not_the_event_loop(tmp_path: Path) -> None:
    """While another connection holds an exclusive lock, a read is not refused
    and does not stall the loop: it waits in the writer's thread, and answers
    once the lock is gone."""
    path = tmp_path / "k.db"
    rollback_journal_db(path)
    direct = SqliteDirect(create_engine_for(f"sqlite+aiosqlite:///{path}"))
    locker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    locker.execute("BEGIN EXCLUSIVE")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    loop = asyncio.get_running_loop()
    loop.call_later(0.3, locker.rollback)
    started = time.monotonic()
    try:
        row = await direct.read_one("SELECT v FROM t WHERE k = ?", ("a",))
    finally:
        ticker.cancel()
        locker.close()
        await direct.close()
    assert row == ("one",)
    assert time.monotonic() - started >= 0.25  # it did wait for the lock
    assert ticks >= 10  # and the loop kept running meanwhile


async def test_reads_and_writes_see_each_other(tmp_path: Path) -> None:
    """A write in the writer's thread is seen by the next read on the loop's
    reader, and a rolled-back one is not."""
    path = tmp_path / "k.db"
    rollback_journal_db(path)
    direct = SqliteDirect(create_engine_for(f"sqlite+aiosqlite:///{path}"))

    def write(value: str, *, keep: bool) -> Callable[[sqlite3.Connection], None]:
        def work(connection: sqlite3.Connection) -> None:
            connection.execute("UPDATE t SET v = ? WHERE k = 'a'", (value,))
            if keep:
                connection.commit()
            else:
                connection.rollback()

        return work

    try:
        await direct.run(write("two", keep=True))
        assert await direct.read_one("SELECT v FROM t WHERE k = ?", ("a",)) == ("two",)
        await direct.run(write("three", keep=False))
        assert await direct.read_one("SELECT v FROM t WHERE k = ?", ("a",)) == ("two",)
        assert await direct.read_one("SELECT v FROM t WHERE k = ?", ("zz",)) is None
    finally:
        await direct.close()


async def test_an_unreachable_database_fails_closed(tmp_path: Path) -> None:
    """A database file that cannot be opened is StoreUnavailable for reads and
    writes alike, never an unhandled driver error."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'missing-dir' / 'k.db'}"
    direct = SqliteDirect(create_engine_for(url))
    try:
        with pytest.raises(StoreUnavailable):
            await direct.read_one("SELECT 1", ())
        with pytest.raises(StoreUnavailable):
            await direct.fetch_one("SELECT 1", ())
    finally:
        await direct.close()


async def test_an_in_memory_database_runs_on_the_engines_connection() -> None:
    """An in-memory database lives only in the engine's one connection: the
    direct path uses that connection, so it sees what the engine wrote."""
    engine = create_engine_for("sqlite+aiosqlite:///:memory:")
    async with engine.begin() as connection:
        await connection.exec_driver_sql("CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT)")
        await connection.exec_driver_sql("INSERT INTO t VALUES ('a', 'one')")
    direct = SqliteDirect(engine)
    try:
        assert await direct.read_one("SELECT v FROM t WHERE k = ?", ("a",)) == ("one",)
        row = await direct.fetch_one("UPDATE t SET v = ? WHERE k = ? RETURNING v", ("two", "a"))
        assert row == ("two",)
        assert await direct.read_one("SELECT v FROM t WHERE k = ?", ("a",)) == ("two",)
    finally:
        await direct.close()
        await engine.dispose()


@pytest.mark.postgres
async def test_postgres_replaces_kept_connections_the_server_dropped(
    postgres_database_url: str,
) -> None:
    """The few connections the PostgreSQL path keeps (no pre-ping per statement)
    may die with the server's restart or an idle timeout: the next statement
    runs on a fresh connection instead of failing."""
    engine = create_engine_for(postgres_database_url)
    direct = PostgresDirect(engine)
    try:
        first = await direct.read_one("SELECT pg_backend_pid()", ())
        assert first is not None
        async with engine.connect() as other:
            await other.exec_driver_sql(f"SELECT pg_terminate_backend({int(first[0])})")
        again = await direct.read_one("SELECT pg_backend_pid() + ?::int", (0,))
        assert again is not None and again[0] != first[0]
    finally:
        await direct.close()
        await engine.dispose()


async def test_postgres_that_cannot_be_reached_fails_closed() -> None:
    """No server at the address: StoreUnavailable, never a driver error."""
    from keyturn.bench.servers import free_port

    url = f"postgresql+asyncpg://keyturn:secret@127.0.0.1:{free_port()}/keyturn"
    engine = create_engine_for(url)
    direct = PostgresDirect(engine)
    try:
        with pytest.raises(StoreUnavailable) as failure:
            await direct.read_one("SELECT 1", ())
        assert "secret" not in str(failure.value)
    finally:
        await direct.close()
        await engine.dispose()
