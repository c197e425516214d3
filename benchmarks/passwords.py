"""How much a password costs on this machine.

Run ``python benchmarks/passwords.py [--runs N]``. Prints the median time to hash
and to verify one password with keyturn's parameters, next to argon2-cffi's
RFC 9106 low-memory preset for comparison, and the machine it ran on.

Then, against a live ``keyturn serve``, it shows that a storm of 16 concurrent
sign-ins does not stall a cheap endpoint: the p99 of ``GET /healthz`` (a light,
fixed-rate probe) while idle and during the storm, as a ratio, and the sign-ins
per second achieved, for each ``--password-hash-concurrency`` asked for (default
1 and 2), in alternating rounds. ``--no-storm`` skips it.

``main()`` prints a list of sections; each section is a function taking the parsed
arguments and returning a Rich renderable, so further measurements are one more
function in ``SECTIONS``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from argon2.profiles import RFC_9106_LOW_MEMORY
from rich.console import Console, RenderableType
from rich.table import Table

from harness import bench_server, latency_percentiles, machine_caption, register
from keyturn.accounts.passwords import PasswordHasher

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Timing:
    """Median times of one parameter set, in milliseconds (wall clock, and the
    process CPU time of one verification, which bounds throughput)."""

    label: str
    hasher: PasswordHasher
    hash_ms: float
    verify_ms: float
    verify_cpu_ms: float


async def _medians_ms(action: Callable[[], Awaitable[object]], runs: int) -> tuple[float, float]:
    """Median wall-clock and process-CPU milliseconds of ``action``, run one at a time."""
    await action()  # warm up: first-call costs (thread pool, allocator) are not the point
    wall, cpu = [], []
    for _ in range(runs):
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        await action()
        wall.append((time.perf_counter() - wall_start) * 1000)
        cpu.append((time.process_time() - cpu_start) * 1000)
    return statistics.median(wall), statistics.median(cpu)


async def time_hasher(label: str, hasher: PasswordHasher, runs: int) -> Timing:
    """Median hash and verify time through keyturn's async API (thread hop included)."""
    stored = await hasher.hash(PASSWORD)
    hash_ms, _ = await _medians_ms(lambda: hasher.hash(PASSWORD), runs)
    verify_ms, verify_cpu_ms = await _medians_ms(lambda: hasher.verify(stored, PASSWORD), runs)
    return Timing(label, hasher, hash_ms, verify_ms, verify_cpu_ms)


def password_hashing_section(runs: int) -> RenderableType:
    """Table: keyturn's argon2id parameters against the RFC 9106 low-memory preset."""
    ours = PasswordHasher()
    preset = PasswordHasher(
        memory_kib=RFC_9106_LOW_MEMORY.memory_cost,
        time_cost=RFC_9106_LOW_MEMORY.time_cost,
        parallelism=RFC_9106_LOW_MEMORY.parallelism,
    )

    async def measure() -> list[Timing]:
        return [
            await time_hasher("keyturn", ours, runs),
            await time_hasher("RFC 9106 low-mem", preset, runs),
        ]

    timings = asyncio.run(measure())
    baseline = timings[0]
    cpus = os.cpu_count() or 1
    table = Table(title=f"argon2id cost, median of {runs} runs")
    table.add_column("parameters")
    for column in ("m KiB", "t", "p", "hash ms", "verify ms", "x keyturn", "CPU ms", "max/s"):
        table.add_column(column, justify="right")
    for timing in timings:
        hasher = timing.hasher
        table.add_row(
            timing.label,
            str(hasher.memory_kib),
            str(hasher.time_cost),
            str(hasher.parallelism),
            f"{timing.hash_ms:.1f}",
            f"{timing.verify_ms:.1f}",
            f"{timing.verify_ms / baseline.verify_ms:.2f}",
            f"{timing.verify_cpu_ms:.1f}",
            f"{cpus * 1000 / max(timing.verify_cpu_ms, 0.001):.0f}",
        )
    table.caption = (
        f"{machine_caption(pinned=False)}\n"
        "x keyturn: verify time relative to keyturn's. CPU ms: process CPU time of one "
        "verify. max/s: CPU-bound sign-in ceiling on all CPUs = CPUs x 1000 / CPU ms"
    )
    return table


# --- a sign-in storm against a live server ----------------------------------------------

#: Concurrent sign-ins in the storm (issue #2: "16 concurrent logins").
STORM_LOGINS = 16


@dataclass(frozen=True)
class StormRound:
    """One idle phase and one storm phase against one server."""

    idle_ms: dict[int, float]  # probe latency percentiles while idle
    storm_ms: dict[int, float]  # probe latency percentiles during the storm
    logins_per_s: float
    login_ms: dict[int, float]  # sign-in latency percentiles
    failures: int  # probe or sign-in answers that were not 200, or transport errors


async def _probe(
    client: httpx.AsyncClient, path: str, rate: float, seconds: float
) -> tuple[list[float], int]:
    """GET ``path`` at a fixed rate (open loop: a slow answer does not delay the next
    request); latencies in ms, and how many failed."""
    latencies: list[float] = []
    failures = 0

    async def one() -> None:
        nonlocal failures
        start = time.perf_counter()
        try:
            response = await client.get(path)
        except httpx.HTTPError:
            failures += 1
            return
        latencies.append((time.perf_counter() - start) * 1000)
        failures += response.status_code != 200

    tasks = []
    began = time.perf_counter()
    for n in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, began + n / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return latencies, failures


async def _storm(
    base_url: str, emails: list[str], seconds: float
) -> tuple[int, list[float], int, float]:
    """One closed loop per user: ``POST /auth/login`` with the right password, again
    and again, for ``seconds``. Returns sign-ins, latencies (ms), failures, seconds."""
    latencies: list[float] = []
    failures = 0
    deadline = time.perf_counter() + seconds

    async def user_loop(email: str) -> None:
        nonlocal failures
        async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as client:
            while time.perf_counter() < deadline:
                client.cookies.clear()  # a fresh sign-in each time, no session to replace
                start = time.perf_counter()
                try:
                    response = await client.post(
                        "/auth/login", json={"email": email, "password": PASSWORD}
                    )
                except httpx.HTTPError:
                    failures += 1
                    continue
                if response.status_code == 200:
                    latencies.append((time.perf_counter() - start) * 1000)
                else:
                    failures += 1

    began = time.perf_counter()
    await asyncio.gather(*(user_loop(email) for email in emails))
    return len(latencies), latencies, failures, time.perf_counter() - began


async def _storm_round(
    base_url: str, emails: list[str], path: str, rate: float, seconds: float
) -> StormRound:
    async with httpx.AsyncClient(base_url=base_url, timeout=30.0) as client:
        await _probe(client, path, rate, 1.0)  # warm the connection pool
        idle, idle_failures = await _probe(client, path, rate, seconds)
        storm_task = asyncio.create_task(_storm(base_url, emails, seconds + 1.0))
        await asyncio.sleep(0.5)  # let the storm build up before probing
        during, probe_failures = await _probe(client, path, rate, seconds)
        logins, login_latencies, login_failures, storm_seconds = await storm_task
    return StormRound(
        idle_ms=latency_percentiles(idle),
        storm_ms=latency_percentiles(during),
        logins_per_s=logins / storm_seconds,
        login_ms=latency_percentiles(login_latencies),
        failures=idle_failures + probe_failures + login_failures,
    )


def _median_of(results: list[StormRound], pick: Callable[[StormRound], float]) -> float:
    return statistics.median(pick(result) for result in results)


def login_storm_section(args: argparse.Namespace) -> RenderableType:
    """Table: p99 of a cheap GET idle vs during 16 concurrent sign-ins, per
    ``--password-hash-concurrency``."""
    emails = [f"storm{n}@example.com" for n in range(STORM_LOGINS)]
    concurrencies: list[int] = args.hash_concurrency
    rounds: dict[int, list[StormRound]] = {k: [] for k in concurrencies}
    with contextlib.ExitStack() as stack:
        servers = {}
        for k in concurrencies:
            # Not pinned: the question is how the server shares all the CPUs
            # between the argon2 threads and its event loop.
            server = stack.enter_context(
                bench_server(
                    ["--workers", "1", "--password-hash-concurrency", str(k)],
                    cpu=None,
                )
            )
            for email in emails:
                register(server, email, PASSWORD)
            servers[k] = server
        for number in range(args.storm_rounds):
            shift = number % len(concurrencies)
            for k in concurrencies[shift:] + concurrencies[:shift]:
                result = asyncio.run(
                    _storm_round(
                        servers[k].url, emails, args.probe_path, args.probe_rate, args.storm_seconds
                    )
                )
                rounds[k].append(result)
                Console(stderr=True).log(
                    f"round {number + 1}/{args.storm_rounds} concurrency {k}: p99 idle "
                    f"{result.idle_ms[99]:.1f} ms, storm {result.storm_ms[99]:.1f} ms, "
                    f"{result.logins_per_s:.1f} sign-ins/s, failures {result.failures}"
                )
    table = Table(
        title=f"GET {args.probe_path} at {args.probe_rate:g}/s, idle vs during {STORM_LOGINS} "
        f"concurrent sign-ins (median of {args.storm_rounds} alternating rounds of "
        f"{args.storm_seconds:g} s)"
    )
    table.add_column("hash concurrency", justify="right")
    for column in (
        "idle p50 ms",
        "idle p99 ms",
        "storm p50 ms",
        "storm p99 ms",
        "p99 storm/idle",
        "sign-ins/s",
        "sign-in p50 ms",
        "sign-in p99 ms",
        "failures",
    ):
        table.add_column(column, justify="right")
    for k, results in rounds.items():
        median = functools.partial(_median_of, results)
        table.add_row(
            str(k),
            f"{median(lambda r: r.idle_ms[50]):.1f}",
            f"{median(lambda r: r.idle_ms[99]):.1f}",
            f"{median(lambda r: r.storm_ms[50]):.1f}",
            f"{median(lambda r: r.storm_ms[99]):.1f}",
            f"{median(lambda r: r.storm_ms[99] / r.idle_ms[99]):.1f}x",
            f"{median(lambda r: r.logins_per_s):.1f}",
            f"{median(lambda r: r.login_ms[50]):.0f}",
            f"{median(lambda r: r.login_ms[99]):.0f}",
            str(sum(result.failures for result in results)),
        )
    table.caption = (
        f"{machine_caption(pinned=False)}\n"
        "This section does not pin: each server (1 worker) may use every CPU, and the "
        "probe and the sign-in clients (Python, httpx) share them. p99 storm/idle: median "
        "of per-round ratios. Each sign-in is a real argon2id verify of a distinct user's "
        "correct password (no throttling)."
    )
    return table


#: Each section takes the parsed arguments and returns something Rich can print.
SECTIONS: list[Callable[[argparse.Namespace], RenderableType]] = [
    lambda args: password_hashing_section(args.runs),
    login_storm_section,
]


def main(argv: list[str] | None = None) -> None:
    """Run every section and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=15, help="samples per median (default 15)")
    parser.add_argument(
        "--hash-concurrency",
        type=int,
        nargs="+",
        default=[1, 2],
        help="--password-hash-concurrency values to compare in the storm (default 1 2)",
    )
    parser.add_argument("--storm-rounds", type=int, default=3, help="storm rounds (default 3)")
    parser.add_argument("--storm-seconds", type=float, default=8.0, help="seconds per phase")
    parser.add_argument("--probe-path", default="/healthz", help="the cheap GET to probe")
    parser.add_argument("--probe-rate", type=float, default=100.0, help="probe requests/s")
    parser.add_argument("--no-storm", action="store_true", help="skip the sign-in storm")
    args = parser.parse_args(argv)
    console = Console()
    sections = SECTIONS[:1] if args.no_storm else SECTIONS
    for section in sections:
        console.print(section(args))


if __name__ == "__main__":
    main()
