"""Soak: a mixed workload against a live ``keyturn serve`` for a long time (issue
#17 item 5).

Run ``python benchmarks/soak.py [--duration S] [--rate OPS] [--redis-url URL]
[--json FILE]``. It starts one ``keyturn serve`` (one worker, SQLite by default;
with ``--redis-url`` also on that Redis), seeds accounts, measures the mixed
workload's capacity with a short closed loop (unless ``--rate`` is given), then
sends the mix of ``benchmarks/soak_workload.py`` (sign-ins, whoami with cookies
and bearers, refreshes, sign-outs, revocations, registrations) at **50 %** of
that capacity, open loop, for ``--duration`` seconds.

Every 10 s it reports the operations done, their p50/p99 per operation, errors,
and the server's RSS. It exits 1 on **any** error (an unexpected status, a
transport error, a time-out, a revoked credential still accepted) or when the
server's RSS grew more than **15 %** between the end of the warm-up and the end
of the run. The server trusts 127.0.0.1 as a proxy and has generous registration
limits, so the per-address throttles see many clients (``soak_workload``).

Traffic goes to 127.0.0.1 only; every loop is bounded by ``--duration``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from keyturn.bench.accounts import PASSWORD
from keyturn.bench.machine import SERVER_CPU, machine_caption
from keyturn.bench.servers import KeyturnServer
from keyturn.bench.stats import percentile
from soak_workload import HASHING, OPERATIONS, POOL_LIMIT, State, Workload
from summary import record_verdicts

INTERVAL = 10.0
RSS_LIMIT = 0.15
#: Most password-hashing operations in flight at once (see open_loop).
HASHING_INFLIGHT = 8
#: Settings of the soak server: trust the load generator as a proxy, and let many
#: addresses register (``--register-*`` where this keyturn has them; unknown
#: ``KEYTURN_*`` variables are ignored).
SERVER_ENV = {
    "KEYTURN_TRUSTED_PROXIES": "127.0.0.1",
    "KEYTURN_REGISTER_MAX_PER_CLIENT": "1000",
    "KEYTURN_REGISTER_MAX_GLOBAL": "100000000",
    "KEYTURN_REGISTER_WINDOW": "60",
}

console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


@dataclass
class Interval:
    """What happened in one 10 s slice."""

    start: float
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: list[str] = field(default_factory=list)
    rss_mb: float | None = None
    skipped: int = 0

    def summary(self) -> dict[str, Any]:
        ops = {
            name: {
                "n": len(values),
                "p50_ms": percentile(values, 50),
                "p99_ms": percentile(values, 99),
            }
            for name, values in sorted(self.latencies.items())
        }
        return {
            "t": round(self.start, 1),
            "ops": ops,
            "errors": len(self.errors),
            "first_errors": self.errors[:3],
            "skipped": self.skipped,
            "rss_mb": self.rss_mb,
        }


@dataclass(frozen=True)
class Verdict:
    claim: str
    measured: str
    target: str
    passed: bool | None
    note: str = ""


def warmup_seconds(duration: float) -> float:
    """The warm-up the RSS baseline is taken after: a fifth of the run, at least
    30 s (half of a run shorter than a minute), at most 5 min."""
    return min(max(min(30.0, duration / 2), duration * 0.2), 300.0)


def rss_growth(samples: list[tuple[float, float]], warmup: float) -> tuple[float, float, float]:
    """(baseline MB, final MB, growth) from ``(t, rss_mb)`` samples: the baseline is
    the first sample at or after ``warmup``, the final the median of the last three.

    Raises:
        ValueError: no sample after the warm-up.
    """
    after = [rss for t, rss in samples if t >= warmup]
    if not after:
        raise ValueError("no RSS sample after the warm-up")
    base = after[0]
    tail = sorted(after[-3:])
    final = tail[len(tail) // 2]
    return base, final, (final - base) / base


def verdicts(
    errors: int, first_error: str, samples: list[tuple[float, float]], warmup: float, ops: int
) -> list[Verdict]:
    """The soak's two targets: no error, and RSS growth <= 15 % after warm-up."""
    out = [
        Verdict(
            "soak: errors",
            f"{errors} in {ops:,} operations",
            "0",
            errors == 0 and ops > 0,
            first_error[:200] if errors else ("" if ops else "no operation ran"),
        )
    ]
    try:
        base, final, growth = rss_growth(samples, warmup)
    except ValueError as exc:
        out.append(Verdict("soak: server RSS growth after warm-up", "-", "<= 15 %", None, str(exc)))
        return out
    out.append(
        Verdict(
            "soak: server RSS growth after warm-up",
            f"{growth:+.1%} ({base:.1f} -> {final:.1f} MB)",
            "<= 15 %",
            growth <= RSS_LIMIT,
            f"baseline at {warmup:.0f} s",
        )
    )
    return out


# --- the run --------------------------------------------------------------------------


async def closed_loop(workload: Workload, seconds: float, workers: int) -> tuple[int, list[str]]:
    """The mix as fast as the server answers: (operations done, errors)."""
    deadline = time.perf_counter() + seconds
    done, errors = 0, []

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            try:
                await workload.run(workload.pick())
                done += 1
            except Exception as exc:
                errors.append(repr(exc))

    await asyncio.gather(*(worker() for _ in range(workers)))
    return done, errors


async def open_loop(
    workload: Workload, server: KeyturnServer, rate: float, seconds: float, inflight: int
) -> tuple[list[Interval], int]:
    """The mix at ``rate`` operations/s for ``seconds``: the intervals and how
    many operations were not started because ``inflight`` were still running
    (at most :data:`HASHING_INFLIGHT` of them hashing a password: a client that
    queued sign-ins without bound behind a busy server would only measure its
    own queue)."""
    begin = time.perf_counter()
    intervals = [Interval(0.0)]
    tasks: set[asyncio.Task[None]] = set()
    hashing: set[asyncio.Task[None]] = set()
    skipped = 0

    async def one(name: str) -> None:
        try:
            ran, took = await workload.run(name)
        except Exception as exc:
            intervals[-1].errors.append(f"{name}: {exc!r}"[:300])
            return
        intervals[-1].latencies[ran].append(took * 1000)

    sent = 0
    while (now := time.perf_counter() - begin) < seconds:
        if now >= intervals[-1].start + INTERVAL:
            report(intervals[-1], server)
            intervals.append(Interval(intervals[-1].start + INTERVAL))
        due = int(now * rate) + 1 - sent
        for _ in range(due):
            sent += 1
            name = workload.pick()
            slow = name in HASHING
            if len(tasks) >= inflight or (slow and len(hashing) >= HASHING_INFLIGHT):
                skipped += 1
                intervals[-1].skipped += 1
                continue
            task = asyncio.create_task(one(name))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            if slow:
                hashing.add(task)
                task.add_done_callback(hashing.discard)
        await asyncio.sleep(min(0.005, 1 / rate))
    if tasks:
        await asyncio.wait(tasks, timeout=workload.timeout + 5)
    report(intervals[-1], server)
    return intervals, skipped


def report(interval: Interval, server: KeyturnServer) -> None:
    rss = server.rss_bytes()
    interval.rss_mb = rss / 2**20 if rss is not None else None
    parts = []
    for name in OPERATIONS:
        values = interval.latencies.get(name, [])
        if values:
            parts.append(
                f"{name} {len(values)} {percentile(values, 50):.1f}/{percentile(values, 99):.1f}"
            )
    total = sum(len(v) for v in interval.latencies.values())
    console.log(
        f"t={interval.start + INTERVAL:5.0f}s ops {total} errors {len(interval.errors)} "
        f"not started {interval.skipped} "
        f"rss {interval.rss_mb or 0:.1f} MB | " + ", ".join(parts) + " (n p50/p99 ms)"
    )
    for error in interval.errors[:3]:
        console.log(f"  error: {error}")


@contextlib.contextmanager
def soak_server(args: argparse.Namespace, root: Path) -> Iterator[KeyturnServer]:
    extra = ["--redis-url", args.redis_url] if args.redis_url else []
    server = KeyturnServer(extra, workdir=root, env=SERVER_ENV, name="keyturn-soak")
    server.start(cpu=None if args.no_pin else SERVER_CPU)
    try:
        yield server
    finally:
        server.stop()


async def soak(args: argparse.Namespace, server: KeyturnServer) -> dict[str, Any]:
    state = State(PASSWORD, prefix=f"soak{int(time.time())}")
    workload = Workload(server.url, state, connections=args.inflight, timeout=args.timeout)
    try:
        for _ in range(args.accounts):
            await workload.run("register")
        rate = args.rate
        capacity = None
        if rate is None:
            console.log(f"measuring the mix's capacity for {args.probe:g} s")
            done, errors = await closed_loop(workload, args.probe, args.probe_workers)
            if errors:
                raise SystemExit(f"soak: errors while measuring capacity: {errors[:3]}")
            capacity = done / args.probe
            rate = max(1.0, capacity * 0.5)
        console.log(f"soaking at {rate:.1f} operations/s for {args.duration:g} s")
        intervals, skipped = await open_loop(workload, server, rate, args.duration, args.inflight)
    finally:
        await workload.close()
    log = [line for line in server.stderr.splitlines() if ' - "' not in line]  # no access log
    return {
        "server_log_tail": log[-40:],
        "capacity_ops_s": capacity,
        "rate_ops_s": rate,
        "skipped": skipped,
        "accounts": len(state.accounts),
        "intervals": intervals,
    }


def print_summary(result: dict[str, Any], found: list[Verdict], args: argparse.Namespace) -> None:
    out = Console(width=None if sys.stdout.isatty() else 200)
    table = Table(title=f"Soak: {args.duration:g} s at {result['rate_ops_s']:.1f} ops/s")
    for column in ("target", "measured", "aim", "verdict", "note"):
        table.add_column(column)
    labels = {True: "[green]PASS[/]", False: "[bold red]MISS[/]", None: "[yellow]N/A[/]"}
    for v in found:
        table.add_row(v.claim, v.measured, v.target, labels[v.passed], v.note)
    capacity = result["capacity_ops_s"]
    table.caption = (
        f"{machine_caption(pinned=not args.no_pin)}\n"
        + (f"capacity {capacity:.1f} ops/s (closed loop), soaked at 50 %. " if capacity else "")
        + f"{result['accounts']} accounts at the end; pools of up to {POOL_LIMIT} sessions "
        f"and token families; {result['skipped']} operations not started (in-flight limits: "
        f"{args.inflight}, {HASHING_INFLIGHT} hashing a password)."
    )
    out.print(table)
    timeline = Table(title="p50 / p99 ms per operation over time, and the server's RSS")
    timeline.add_column("until")
    for name in OPERATIONS:
        timeline.add_column(name, justify="right")
    timeline.add_column("errors", justify="right")
    timeline.add_column("RSS MB", justify="right")
    intervals: list[Interval] = result["intervals"]
    step = max(1, len(intervals) // 30)  # at most ~30 rows: merge neighbours
    for i in range(0, len(intervals), step):
        group = intervals[i : i + step]
        cells = []
        for name in OPERATIONS:
            values = [x for interval in group for x in interval.latencies.get(name, [])]
            cells.append(
                f"{percentile(values, 50):.1f}/{percentile(values, 99):.1f}" if values else "-"
            )
        errors = sum(len(interval.errors) for interval in group)
        timeline.add_row(
            f"{group[-1].start + INTERVAL:.0f}s",
            *cells,
            str(errors),
            f"{group[-1].rss_mb or 0:.1f}",
        )
    out.print(timeline)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (default 600)")
    parser.add_argument(
        "--rate", type=float, default=None, help="ops/s (default: 50 %% of capacity)"
    )
    parser.add_argument("--redis-url", default=None, help="a Redis on 127.0.0.1")
    parser.add_argument("--probe", type=float, default=10.0, help="capacity probe seconds")
    parser.add_argument("--probe-workers", type=int, default=16)
    parser.add_argument("--accounts", type=int, default=20, help="accounts seeded first")
    parser.add_argument("--inflight", type=int, default=64, help="most operations at once")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the server to CPU 0")
    parser.add_argument("--json", type=Path, default=None, help="write the timeline here")
    args = parser.parse_args(argv)
    if args.inflight >= POOL_LIMIT:
        parser.error(f"--inflight must stay below the pool limit ({POOL_LIMIT})")
    with (
        tempfile.TemporaryDirectory(prefix="keyturn-soak-") as tmp,
        soak_server(args, Path(tmp)) as server,
    ):
        result = asyncio.run(soak(args, server))
    intervals: list[Interval] = result["intervals"]
    errors = [error for interval in intervals for error in interval.errors]
    ops = sum(len(v) for interval in intervals for v in interval.latencies.values())
    samples = [
        (interval.start + INTERVAL, interval.rss_mb)
        for interval in intervals
        if interval.rss_mb is not None
    ]
    warmup = warmup_seconds(args.duration)
    found = verdicts(len(errors), errors[0] if errors else "", samples, warmup, ops)
    print_summary(result, found, args)
    if errors:
        print("--- the server's log, last lines (access log left out) ---")
        print("\n".join(result["server_log_tail"]))
    record_verdicts("soak.py", found)
    if args.json is not None:
        payload = {
            **{key: value for key, value in result.items() if key != "intervals"},
            "duration_s": args.duration,
            "warmup_s": warmup,
            "operations": ops,
            "errors": len(errors),
            "verdicts": [v.__dict__ for v in found],
            "intervals": [interval.summary() for interval in intervals],
        }
        args.json.write_text(json.dumps(payload, indent=1))
    return 0 if all(v.passed for v in found) else 1


if __name__ == "__main__":
    sys.exit(main())
