"""Plain SQL for the hottest statements, beside SQLAlchemy rather than through it.

Every refresh grant reads its token and user and rotates the token. Through
SQLAlchemy Core and ``aiosqlite`` that cost about 23 trips into the driver's
thread per refresh (execute, fetch, cursor close, begin, commit, the pool's
reset-on-return rollback), each a context switch and a GIL hand-over on a
one-vCPU worker, plus statement compilation and result processing: most of a
refresh's CPU (``docs/benchmarks.md``). The few statements on that path run here
instead, as constant SQL text with bound parameters (never formatted values):

* :class:`SqliteDirect`: a unit of work (a transaction of several statements)
  is one synchronous function, run in **one hop** on a dedicated ``sqlite3``
  writer connection in its own thread: concurrent callers queue in memory in
  front of it instead of sleeping in ``busy_timeout`` against each other, and
  ``sqlite3``'s statement cache keeps the statements prepared. A single read
  takes no hop at all (see the class). An in-memory database exists only inside
  the engine's one shared connection, so there the function runs on that
  connection (through the engine: correct, not faster).
* :class:`PostgresDirect` (:mod:`.direct_postgres`): one statement per step on
  one of a few ``asyncpg`` connections it keeps (no pool check-out and
  pre-ping per statement), prepared once per connection by ``asyncpg``'s
  statement cache, in autocommit: one round trip, and a transaction of several
  changes is one statement (data-modifying ``WITH``).

Both fail closed like :func:`~keyturn.stores.sql.engine.connect`: a database that
cannot be reached raises :class:`~keyturn.errors.StoreUnavailable`; constraint
violations pass through.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from keyturn.errors import StoreUnavailable
from keyturn.stores.sql.direct_postgres import PostgresDirect
from keyturn.stores.sql.engine import SQLITE_PRAGMAS, connect, safe_url

__all__ = ["DirectSql", "PostgresDirect", "Row", "SqliteDirect", "direct_for"]

T = TypeVar("T")
Row = tuple[Any, ...]

#: SQLite errors that mean "the database cannot be used" (locked past the busy
#: timeout, unreadable, not a database): fail closed. Integrity and programming
#: errors are the caller's.
_SQLITE_OUTAGES = (sqlite3.OperationalError, sqlite3.InterfaceError, OSError)
#: SQLITE_BUSY and SQLITE_LOCKED (primary codes, under any extended code).
_BUSY = frozenset({5, 6})


class DirectSql(Protocol):
    """One statement, read or write, in autocommit: the part both dialects share."""

    async def fetch_one(self, sql: str, params: Sequence[Any]) -> Row | None:
        """Run ``sql`` (``?`` placeholders) with ``params``, in its own
        transaction; its first row, or None.

        Raises:
            StoreUnavailable: the database cannot be reached.
        """
        ...

    async def read_one(self, sql: str, params: Sequence[Any]) -> Row | None:
        """Like :meth:`fetch_one`, for a statement that only reads.

        Raises:
            StoreUnavailable: the database cannot be reached.
        """
        ...

    async def close(self) -> None:
        """Release the connections and thread this object holds (if any)."""
        ...


def direct_for(engine: AsyncEngine) -> SqliteDirect | PostgresDirect:
    """The direct path for ``engine``'s database (SQLite or PostgreSQL)."""
    if engine.dialect.name == "postgresql":
        return PostgresDirect(engine)
    return SqliteDirect(engine)


class SqliteDirect:
    """Units of work on one ``sqlite3`` connection, each one thread hop, and
    single reads with no hop at all.

    A unit of work is a function of a DBAPI connection in ``sqlite3``'s default
    transaction mode: a data-changing statement opens a (deferred) transaction,
    which the function commits or rolls back itself; a plain read runs on its
    own. It must not block on anything but the database.

    :meth:`read_one` runs in the calling (event-loop) thread, on a read-only
    connection of its own that never waits (``busy_timeout`` 0): in WAL mode a
    reader does not wait for writers, and a primary-key lookup in SQLite's page
    cache takes microseconds, less than the hop would. Should SQLite report the
    database busy all the same (a WAL-index recovery, a file not in WAL mode),
    that read goes to the writer's thread, which may wait.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        database = engine.url.database
        in_memory = database in (None, "", ":memory:") or bool(engine.url.query)
        self._path = None if in_memory else database
        self._executor: ThreadPoolExecutor | None = None
        self._connection: sqlite3.Connection | None = None
        self._local = threading.local()  # each thread's reader (normally the loop's)
        self._readers: list[sqlite3.Connection] = []

    def __repr__(self) -> str:
        return f"SqliteDirect({safe_url(self._engine)!r})"

    async def run(self, work: Callable[[Any], T]) -> T:
        """``work(connection)`` in the connection's thread; its result.

        Raises:
            StoreUnavailable: the database cannot be opened or used.
        """
        if self._path is None:
            return await self._run_pooled(work)
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="keyturn-sqlite")
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self._executor, self._in_thread, work
            )
        except _SQLITE_OUTAGES as exc:
            raise self._unavailable(exc) from exc

    async def fetch_one(self, sql: str, params: Sequence[Any]) -> Row | None:
        """See :meth:`DirectSql.fetch_one`."""
        return await self.run(lambda connection: _fetch_one(connection, sql, params))

    async def read_one(self, sql: str, params: Sequence[Any]) -> Row | None:
        """See :meth:`DirectSql.read_one`: here, without leaving this thread."""
        return await self._read(_fetch_one, sql, params)

    async def read_rows(self, sql: str, params: Sequence[Any]) -> list[Row]:
        """Every row of a statement that only reads, like :meth:`read_one`: in this
        thread, unless SQLite reports the database busy.

        Raises:
            StoreUnavailable: the database cannot be reached.
        """
        return await self._read(_fetch_all, sql, params)

    async def _read(
        self, fetch: Callable[[Any, str, Sequence[Any]], T], sql: str, params: Sequence[Any]
    ) -> T:
        """``fetch`` on this thread's reader; on the writer's thread (which may wait)
        when SQLite reports the database busy, or for an in-memory database."""
        if self._path is not None:
            try:
                return fetch(self._reader(), sql, params)
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF not in _BUSY:
                    raise self._unavailable(exc) from exc
            except _SQLITE_OUTAGES as exc:
                raise self._unavailable(exc) from exc
        return await self.run(lambda connection: fetch(connection, sql, params))

    async def close(self) -> None:
        """Close the connections and stop the writer's thread."""
        readers, self._readers = self._readers, []
        self._local = threading.local()
        for reader in readers:
            reader.close()
        executor, self._executor = self._executor, None
        if executor is None:
            return
        await asyncio.get_running_loop().run_in_executor(executor, self._close_in_thread)
        executor.shutdown(wait=False)

    def _in_thread(self, work: Callable[[Any], T]) -> T:
        connection = self._connection
        if connection is None:
            connection = self._connection = self._open()
        return work(connection)

    def _open(self) -> sqlite3.Connection:
        assert self._path is not None
        connection = sqlite3.connect(self._path, check_same_thread=False)
        try:
            for pragma in SQLITE_PRAGMAS:
                connection.execute(pragma)
        except BaseException:
            connection.close()
            raise
        return connection

    def _reader(self) -> sqlite3.Connection:
        reader: sqlite3.Connection | None = getattr(self._local, "reader", None)
        if reader is None:
            assert self._path is not None
            reader = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            try:
                reader.execute("PRAGMA busy_timeout=0")
                reader.execute("PRAGMA query_only=ON")
            except BaseException:
                reader.close()
                raise
            self._local.reader = reader
            self._readers.append(reader)
        return reader

    def _close_in_thread(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    async def _run_pooled(self, work: Callable[[Any], T]) -> T:
        try:
            async with connect(self._engine) as connection:
                return await connection.run_sync(
                    lambda sync: work(sync.connection.dbapi_connection)
                )
        except _SQLITE_OUTAGES as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        return StoreUnavailable(f"cannot reach database {safe_url(self._engine)}: {reason}")


def _fetch_all(connection: Any, sql: str, params: Sequence[Any]) -> list[Row]:
    cursor = connection.cursor()
    try:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        connection.commit()  # ends the read transaction (a no-op in autocommit)
    except BaseException:
        connection.rollback()
        raise
    finally:
        cursor.close()
    return [tuple(row) for row in rows]


def _fetch_one(connection: Any, sql: str, params: Sequence[Any]) -> Row | None:
    cursor = connection.cursor()
    try:
        cursor.execute(sql, params)
        row = cursor.fetchone()
        connection.commit()  # a write (with RETURNING) is its own transaction; a read: no-op
    except BaseException:
        connection.rollback()
        raise
    finally:
        cursor.close()
    return None if row is None else tuple(row)
