"""``keyturn serve`` under cProfile, counting every SQL statement it sends.

Run ``python benchmarks/profiled_serve.py PROFILE SQL_JSON -- serve ARGS...``
(``benchmarks/token_endpoint.py --profile`` does). SIGUSR1 forgets everything
measured so far (the set-up before the load). Stops cleanly on SIGINT, then
writes the cProfile stats to ``PROFILE`` and, to ``SQL_JSON``, how often each SQL
statement ran and the seconds spent inside the database driver for it (measured
around the DBAPI cursor call, in the thread that makes it).

Only SQLAlchemy's public event API is used (a listener on every ``Engine``), so
keyturn's code runs exactly as it does in ``keyturn serve``.
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


@event.listens_for(Engine, "before_cursor_execute")
def _before(*args: Any) -> None:
    _local.start = time.perf_counter()


@event.listens_for(Engine, "after_cursor_execute")
def _after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
    took = time.perf_counter() - getattr(_local, "start", time.perf_counter())
    shape = _shape(statement)
    with _lock:
        counts[shape] += 1
        seconds[shape] += took


def main() -> None:
    profile_path, sql_path, separator, *argv = sys.argv[1:]
    if separator != "--":
        raise SystemExit("usage: profiled_serve.py PROFILE SQL_JSON -- serve ARGS...")
    from keyturn.cli import main as keyturn_main

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
