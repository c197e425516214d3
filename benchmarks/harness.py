"""Shared machinery of the repository's benchmark scripts, on top of
:mod:`keyturn.bench` (the package behind ``keyturn bench``), so the scripts and
the command measure the same way.

The method follows ``shared/research/perf-anchors.md`` so keyturn's numbers sit next
to the reference ones: ``keyturn serve`` with one worker pinned to CPU 0, ``wrk -t1
-c32 -dS --latency`` pinned to CPU 1, the cases run in alternating rounds (A B A B
…, the starting case rotated every round), figures are medians over rounds and a
ratio is the median of the per-round ratios.

* :func:`bench_server` starts a ``keyturn serve`` for measurement
  (:class:`keyturn.bench.servers.KeyturnServer`: its own temporary directory, a
  fresh SQLite file, no ``KEYTURN_*`` from the caller's shell).
* :func:`run_load` (:mod:`keyturn.bench.load`) drives one URL with GETs: ``wrk``
  when installed (``scripts/install-bench-tools.sh``), else keyturn's asyncio load
  generator, labelled ``python-asyncio`` in every result.
* :func:`alternate` runs named cases in alternating rounds; :func:`compare_routes`
  prints one server's routes side by side.
* :func:`machine_caption` describes the machine for every report.

Traffic goes only to 127.0.0.1 and every run is bounded in time.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from keyturn.bench.accounts import PASSWORD, SESSION_COOKIE
from keyturn.bench.accounts import Credential as SignedIn
from keyturn.bench.accounts import login as _login
from keyturn.bench.accounts import register as _register
from keyturn.bench.load import LoadResult, Tool, load_tool_name, run_load
from keyturn.bench.machine import (
    CLIENT_CPU,
    SERVER_CPU,
    Machine,
    can_pin,
    machine,
    machine_caption,
    pinned,
)
from keyturn.bench.rounds import Rounds, alternate
from keyturn.bench.servers import LOOPBACK, KeyturnServer
from keyturn.bench.stats import latency_percentiles, percentile

__all__ = [
    "CLIENT_CPU",
    "LOOPBACK",
    "PASSWORD",
    "SERVER_CPU",
    "SESSION_COOKIE",
    "KeyturnServer",
    "LoadResult",
    "Machine",
    "Rounds",
    "SignedIn",
    "alternate",
    "bench_server",
    "can_pin",
    "compare_routes",
    "latency_percentiles",
    "load_tool_name",
    "login",
    "machine",
    "machine_caption",
    "percentile",
    "pinned",
    "register",
    "run_load",
]


@contextlib.contextmanager
def bench_server(
    args: Sequence[str] = (),
    *,
    cpu: int | None = SERVER_CPU,
) -> Iterator[KeyturnServer]:
    """A started ``keyturn serve ARGS`` on a fresh SQLite file, pinned to ``cpu``
    (``None``: free to use every CPU). Its directory is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="keyturn-bench-") as tmp:
        server = KeyturnServer(args, workdir=Path(tmp))
        try:
            server.start(cpu=cpu)
            yield server
        finally:
            server.stop()


def register(server: KeyturnServer, email: str, password: str = PASSWORD) -> None:
    """``POST /auth/register``."""
    _register(server, email, password)


def login(server: KeyturnServer, email: str, password: str = PASSWORD) -> SignedIn:
    """``POST /auth/login``: the session cookie (``.headers``) and CSRF token."""
    return _login(server, email, password)


Routes = Mapping[str, tuple[str, Mapping[str, str]]]


def compare_routes(
    server: KeyturnServer,
    routes: Routes,
    args: Any,
    *,
    title: str,
    log: Callable[[str], None] = print,
) -> Table:
    """Load each route of one server in alternating rounds; a table of req/s,
    latencies and the first route's throughput as a ratio of each other's.

    ``routes`` maps a label to ``(path, headers)``; the first is the one measured
    against the others. ``args`` carries ``rounds``, ``duration``,
    ``connections`` and ``tool`` (the benchmarks' common flags).
    """
    tool: Tool = args.tool

    def case(path: str, headers: Mapping[str, str], duration: float) -> Callable[[], LoadResult]:
        return lambda: run_load(
            server.url + path,
            headers=dict(headers),
            connections=args.connections,
            duration=duration,
            tool=tool,
        )

    for path, headers in routes.values():  # warm-up: caches, allocator, CPU frequency
        case(path, headers, min(2.0, args.duration))()
    rounds = alternate(
        {name: case(path, headers, args.duration) for name, (path, headers) in routes.items()},
        args.rounds,
        progress=lambda name, result: log(
            f"{name}: {result.requests_per_s:.0f} req/s, p99 {result.p99:.1f} ms, "
            f"errors {result.errors}"
        ),
    )
    measured = next(iter(routes))
    table = Table(
        title=f"{title} (median of {args.rounds} alternating rounds of {args.duration:g} s, "
        f"{args.connections} connections)"
    )
    table.add_column("route")
    for column in ("req/s", "min-max req/s", "first / route", "p50 ms", "p99 ms", "errors"):
        table.add_column(column, justify="right")
    for name in routes:
        low, high = rounds.spread(name)
        ratio = "-" if name == measured else f"{rounds.ratio(measured, name):.2f}x"
        table.add_row(
            name,
            f"{rounds.median(name, 'requests_per_s'):,.0f}",
            f"{low:,.0f}-{high:,.0f}",
            ratio,
            f"{rounds.median(name, 'p50'):.1f}",
            f"{rounds.median(name, 'p99'):.1f}",
            str(rounds.errors(name)),
        )
    table.caption = (
        f"{machine_caption()}\nload generator: {load_tool_name(tool)}. "
        "first / route: median of the same-round req/s ratios (target >= 0.90x). "
        "errors: answers >= 400 plus socket errors, all rounds."
    )
    return table
