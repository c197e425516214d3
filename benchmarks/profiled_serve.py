"""``keyturn serve`` under cProfile, counting every SQL statement it sends.

Run ``python benchmarks/profiled_serve.py PROFILE SQL_JSON -- serve ARGS...``
(``benchmarks/token_endpoint.py --profile`` does). SIGUSR1 forgets everything
measured so far (the set-up before the load). Stops cleanly on SIGINT, then
writes the cProfile stats to ``PROFILE`` and, to ``SQL_JSON``, how often each SQL
statement ran and the seconds spent inside the database driver for it (measured
around the DBAPI cursor call, in the thread that makes it).

Statements through SQLAlchemy are counted by a listener on every ``Engine`` (its
public event API); the refresh grant's plain SQL (:mod:`keyturn.stores.sql.direct`)
by wrapping the cursors of the direct ``sqlite3`` connections and
``PostgresDirect.fetch_one`` (the latter's time includes the pool check-out).
keyturn's code otherwise runs exactly as it does in ``keyturn serve``.
"""

from __future__ import annotations

import cProfile
import json
import re
import signal
import sys
import threading
import time
from collections import Counter
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

counts: Counter[str] = Counter()
seconds: Counter[str] = Counter()
_lock = threading.Lock()
_local = threading.local()


def _shape(statement: str) -> str:
    """The statement with its column lists cut, so every run of it counts as one."""
    text = " ".join(statement.split())
    text = re.sub(r"SELECT .*? FROM", "SELECT … FROM", text)
    text = re.sub(r"\(([^()]*)\) VALUES \(([^()]*)\)", "(…) VALUES (…)", text)
    text = re.sub(r"SET .*? WHERE", "SET … WHERE", text)
    return text[:160]


def _count(statement: str, took: float) -> None:
    shape = _shape(statement)
    with _lock:
        counts[shape] += 1
        seconds[shape] += took


class _TimedCursor:
    """A ``sqlite3`` cursor whose ``execute`` is counted and timed."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, statement: str, parameters: Any = ()) -> Any:
        start = time.perf_counter()
        try:
            return self._cursor.execute(statement, parameters)
        finally:
            _count(statement, time.perf_counter() - start)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


class _TimedConnection:
    """The direct ``sqlite3`` connection, handing out timed cursors."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def cursor(self) -> _TimedCursor:
        return _TimedCursor(self._connection.cursor())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def _count_direct_sql() -> None:
    """Count the statements of :mod:`keyturn.stores.sql.direct` too (when this
    keyturn has it: an older checkout profiled for comparison may not)."""
    try:
        from keyturn.stores.sql import direct
    except ImportError:
        return

    open_sqlite = direct.SqliteDirect._open
    reader = direct.SqliteDirect._reader
    fetch_pg = direct.PostgresDirect.fetch_one

    def timed_open(self: Any) -> Any:
        return _TimedConnection(open_sqlite(self))

    def timed_reader(self: Any) -> Any:
        return _TimedConnection(reader(self))

    async def timed_fetch(self: Any, statement: str, params: Any) -> Any:
        start = time.perf_counter()
        try:
            return await fetch_pg(self, statement, params)
        finally:
            _count(statement, time.perf_counter() - start)

    direct.SqliteDirect._open = timed_open  # type: ignore[method-assign]
    direct.SqliteDirect._reader = timed_reader  # type: ignore[method-assign]
    direct.PostgresDirect.fetch_one = timed_fetch  # type: ignore[method-assign]


@event.listens_for(Engine, "before_cursor_execute")
def _before(*args: Any) -> None:
    _local.start = time.perf_counter()


@event.listens_for(Engine, "after_cursor_execute")
def _after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
    _count(statement, time.perf_counter() - getattr(_local, "start", time.perf_counter()))


def main() -> None:
    profile_path, sql_path, separator, *argv = sys.argv[1:]
    if separator != "--":
        raise SystemExit("usage: profiled_serve.py PROFILE SQL_JSON -- serve ARGS...")
    from keyturn.cli import main as keyturn_main

    _count_direct_sql()

    sys.argv = ["keyturn", *argv]
    profiler = cProfile.Profile()

    def forget(*_: object) -> None:
        profiler.clear()
        with _lock:
            counts.clear()
            seconds.clear()

    signal.signal(signal.SIGUSR1, forget)
    try:
        profiler.runcall(keyturn_main)
    except SystemExit:
        pass
    finally:
        profiler.dump_stats(profile_path)
        rows = [
            {"statement": shape, "count": n, "seconds": seconds[shape]}
            for shape, n in counts.most_common()
        ]
        with open(sql_path, "w", encoding="utf-8") as out:
            json.dump(rows, out, indent=1)


if __name__ == "__main__":
    main()
