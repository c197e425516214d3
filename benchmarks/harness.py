"""Shared machinery for keyturn's HTTP benchmarks: a pinned server, a load generator,
alternating rounds, and the machine a number was measured on.

The method follows ``shared/research/perf-anchors.md`` so keyturn's numbers sit next
to the reference ones: ``keyturn serve`` with one worker pinned to CPU 0, ``wrk -t1
-c32 -d10s --latency`` pinned to CPU 1, the cases run in alternating rounds (A B A B
…, the starting case rotated every round), figures are medians over rounds and a
ratio is the median of the per-round ratios (a same-round ratio survives the drift
of a noisy shared VM far better than a ratio of medians).

* :func:`bench_server` starts a server for measurement. It reuses
  :class:`tests.live.LiveServer` (the repository root is put on ``sys.path``), so the
  server runs exactly as the black-box tests run it: its own working directory, a
  fresh SQLite file, no ``KEYTURN_*`` from the caller's shell.
* :func:`run_load` drives one URL with given headers and returns req/s and latency
  percentiles. It uses ``wrk`` (Debian package; ``scripts/install-bench-tools.sh``
  installs it). Without ``wrk`` it falls back to :func:`python_load`, an asyncio +
  httpx closed loop with N connections for a fixed time. The fallback is labelled
  ``python-httpx`` in every result: it costs far more CPU per request than ``wrk``,
  so on two CPUs it measures the client about as much as the server, and its req/s
  are not comparable with ``wrk``'s (its same-round ratios still are, roughly).
* :func:`alternate` runs named cases in alternating rounds.
* :func:`machine` / :func:`machine_caption` describe the machine (platform, CPU
  model, CPU count, Python, load average) for every report.

Traffic goes only to 127.0.0.1 and every run is bounded in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.table import Table

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from tests.live import LiveServer  # noqa: E402 - needs the repository root on sys.path

#: The CPU the server runs on, and the one the load generator runs on.
SERVER_CPU = 0
CLIENT_CPU = 1

#: Where every server is sent; nothing else is ever contacted.
LOOPBACK = "127.0.0.1"

SESSION_COOKIE = "__Host-keyturn_session"


# --- the machine ----------------------------------------------------------------------


@dataclass(frozen=True)
class Machine:
    """What a number was measured on."""

    platform: str
    cpu_model: str
    cpu_count: int
    python: str
    load_average: tuple[float, float, float]
    pinning: bool

    def caption(self, *, pinned: bool = True) -> str:
        """One line for a table caption; ``pinned=False`` for runs that do not pin."""
        load = " ".join(f"{value:.2f}" for value in self.load_average)
        if not pinned:
            placement = "not pinned"
        elif self.pinning:
            placement = f"server on CPU {SERVER_CPU}, load generator on CPU {CLIENT_CPU}"
        else:
            placement = "no CPU pinning (needs sched_setaffinity and 2 CPUs)"
        return (
            f"{self.platform} | {self.cpu_model} x {self.cpu_count} | {self.python} | "
            f"load average {load} (1/5/15 min) | {placement}"
        )


def cpu_model() -> str:
    """The CPU model from ``/proc/cpuinfo`` (``platform.processor()`` elsewhere)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def can_pin() -> bool:
    """Whether the server and the load generator can get a CPU each."""
    if not hasattr(os, "sched_setaffinity"):
        return False
    try:
        allowed = os.sched_getaffinity(0)
    except OSError:
        return False
    return {SERVER_CPU, CLIENT_CPU} <= allowed


def machine() -> Machine:
    """The machine as it is now (the load average changes: call it per report)."""
    try:
        load = os.getloadavg()
    except OSError:
        load = (float("nan"),) * 3
    return Machine(
        platform=platform.platform(),
        cpu_model=cpu_model(),
        cpu_count=os.cpu_count() or 1,
        python=f"{platform.python_implementation()} {platform.python_version()}",
        load_average=(load[0], load[1], load[2]),
        pinning=can_pin(),
    )


def machine_caption(*, pinned: bool = True) -> str:
    """:meth:`Machine.caption` of the machine as it is now."""
    return machine().caption(pinned=pinned)


# --- pinning --------------------------------------------------------------------------


@contextlib.contextmanager
def pinned(cpu: int | None) -> Iterator[None]:
    """Run the body with this thread pinned to ``cpu`` (no-op if that cannot work).

    Processes started inside inherit the pinning: this is how the server ends up
    on its CPU without changing how :class:`LiveServer` starts it.
    """
    if cpu is None or not can_pin():
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _pin_child(cpu: int | None) -> Callable[[], None] | None:
    if cpu is None or not can_pin():
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


# --- the server -----------------------------------------------------------------------


@contextlib.contextmanager
def bench_server(
    args: Sequence[str] = (),
    *,
    cpu: int | None = SERVER_CPU,
    env: Mapping[str, str] | None = None,
) -> Iterator[LiveServer]:
    """A started ``keyturn serve ARGS`` on a fresh SQLite file, pinned to ``cpu``.

    ``cpu=None`` leaves the server free to use every CPU. The working directory
    (database included) is removed afterwards.
    """
    with tempfile.TemporaryDirectory(prefix="keyturn-bench-") as tmp:
        server = LiveServer(args, workdir=Path(tmp), env=env)
        with pinned(cpu):
            server.start()
        try:
            yield server
        finally:
            server.stop()


@dataclass(frozen=True)
class SignedIn:
    """A user created and signed in through the real HTTP API."""

    email: str
    password: str
    cookie: str  # ``NAME=VALUE``, ready for a ``Cookie`` header
    csrf_token: str

    @property
    def headers(self) -> dict[str, str]:
        """Request headers that authenticate as this user's session."""
        return {"Cookie": self.cookie}


def register(server: LiveServer, email: str, password: str) -> None:
    """``POST /auth/register``; falls back to ``keyturn user add`` when registration
    is closed."""
    with server.client() as client:
        response = client.post("/auth/register", json={"email": email, "password": password})
    if response.status_code == 201:
        return
    if response.status_code == 403 or response.status_code == 404:
        server.add_user(email, password)
        return
    raise RuntimeError(f"POST /auth/register: {response.status_code} {response.text}")


def login(server: LiveServer, email: str, password: str) -> SignedIn:
    """``POST /auth/login`` and the session cookie it set."""
    with server.client() as client:
        response = client.post("/auth/login", json={"email": email, "password": password})
    if response.status_code != 200:
        raise RuntimeError(f"POST /auth/login: {response.status_code} {response.text}")
    for header in response.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name.strip() == SESSION_COOKIE:
            value = rest.split(";", 1)[0]
            return SignedIn(
                email, password, f"{SESSION_COOKIE}={value}", response.json()["csrf_token"]
            )
    raise RuntimeError("POST /auth/login set no session cookie")


# --- load generation ------------------------------------------------------------------


@dataclass(frozen=True)
class LoadResult:
    """One run of the load generator against one URL."""

    tool: str  # "wrk" or "python-httpx" (the fallback)
    requests: int
    seconds: float
    requests_per_s: float
    latency_ms: dict[int, float]  # percentile -> milliseconds (50, 75, 90, 99)
    errors: int  # non-2xx/3xx answers plus socket errors

    @property
    def p50(self) -> float:
        return self.latency_ms[50]

    @property
    def p99(self) -> float:
        return self.latency_ms[99]


def wrk_path() -> str | None:
    """The ``wrk`` binary, if installed."""
    return shutil.which("wrk")


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_VALUE = r"([\d.]+)(us|ms|s|m|h)"


def parse_wrk(output: str) -> LoadResult:
    """Read req/s, latency percentiles and errors from ``wrk --latency`` output."""

    def ms(number: str, unit: str) -> float:
        return float(number) * _UNITS_MS[unit]

    latency = {
        int(pct): ms(number, unit)
        for pct, number, unit in re.findall(rf"^\s+(\d+)%\s+{_VALUE}\s*$", output, re.M)
    }
    total = re.search(r"(\d+) requests in " + _VALUE, output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if total is None or rate is None or 99 not in latency:
        raise RuntimeError(f"cannot read wrk output:\n{output}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors += int(non_2xx.group(1)) if non_2xx else 0
    return LoadResult(
        tool="wrk",
        requests=int(total.group(1)),
        seconds=ms(total.group(2), total.group(3)) / 1000,
        requests_per_s=float(rate.group(1)),
        latency_ms=latency,
        errors=errors,
    )


def run_wrk(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    connections: int = 32,
    duration: float = 10.0,
    cpu: int | None = CLIENT_CPU,
) -> LoadResult:
    """``wrk -t1 -cN -dD --latency [-H …] URL``, pinned to ``cpu``."""
    binary = wrk_path()
    if binary is None:
        raise RuntimeError("wrk is not installed (scripts/install-bench-tools.sh)")
    _check_loopback(url)
    command = [binary, "-t1", f"-c{connections}", f"-d{duration:g}s", "--latency", "--timeout=5s"]
    for name, value in (headers or {}).items():
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=duration + 30,
        check=False,
        preexec_fn=_pin_child(cpu),  # only sets the CPU affinity of this child
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stderr}{done.stdout}")
    return parse_wrk(done.stdout)


def percentile(samples: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile of ``samples`` (nearest rank; nan when empty)."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def latency_percentiles(samples_ms: Sequence[float]) -> dict[int, float]:
    """p50, p75, p90 and p99 of latencies in milliseconds."""
    return {pct: percentile(samples_ms, pct) for pct in (50, 75, 90, 99)}


async def _python_load(
    url: str, headers: Mapping[str, str], connections: int, duration: float
) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=5.0, headers=dict(headers)) as client:
        deadline = time.perf_counter() + duration

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    response = await client.get(url)
                except httpx.HTTPError:
                    errors += 1
                    continue
                latencies.append((time.perf_counter() - start) * 1000)
                if response.status_code >= 400:
                    errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        seconds = time.perf_counter() - began
    return LoadResult(
        tool="python-httpx",
        requests=len(latencies),
        seconds=seconds,
        requests_per_s=len(latencies) / seconds,
        latency_ms=latency_percentiles(latencies),
        errors=errors,
    )


def python_load(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    connections: int = 32,
    duration: float = 10.0,
    cpu: int | None = CLIENT_CPU,
) -> LoadResult:
    """The fallback load generator: ``connections`` asyncio tasks over one httpx
    client, each sending GETs back to back for ``duration`` seconds, in this
    process (pinned to ``cpu`` meanwhile). Results are labelled ``python-httpx``.
    """
    _check_loopback(url)
    with pinned(cpu):
        return asyncio.run(_python_load(url, headers or {}, connections, duration))


def run_load(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    connections: int = 32,
    duration: float = 10.0,
    cpu: int | None = CLIENT_CPU,
    tool: str = "auto",
) -> LoadResult:
    """Drive ``url`` with GETs: ``wrk`` when installed (or ``tool="wrk"``), else the
    Python fallback (or ``tool="python"``)."""
    use_wrk = tool == "wrk" or (tool == "auto" and wrk_path() is not None)
    load = run_wrk if use_wrk else python_load
    return load(url, headers=headers, connections=connections, duration=duration, cpu=cpu)


def load_tool_name(tool: str = "auto") -> str:
    """What :func:`run_load` will use, for captions."""
    if tool == "wrk" or (tool == "auto" and wrk_path() is not None):
        return "wrk (-t1, --latency)"
    return "python-httpx FALLBACK (wrk not installed: client-bound, req/s not comparable)"


def _check_loopback(url: str) -> None:
    host = httpx.URL(url).host
    if host not in (LOOPBACK, "localhost", "::1"):
        raise ValueError(f"benchmarks only send traffic to loopback, not {host}")


# --- rounds ---------------------------------------------------------------------------


@dataclass
class Rounds:
    """Results of :func:`alternate`: per case, one result per round."""

    results: dict[str, list[LoadResult]] = field(default_factory=dict)

    def median(self, case: str, attribute: str) -> float:
        """Median over rounds of ``attribute`` (``requests_per_s``, ``p50``, ``p99`` …)."""
        return statistics.median(getattr(result, attribute) for result in self.results[case])

    def ratio(self, case: str, base: str, attribute: str = "requests_per_s") -> float:
        """Median of the per-round ratios ``case / base`` of ``attribute``."""
        pairs = zip(self.results[case], self.results[base], strict=True)
        return statistics.median(getattr(a, attribute) / getattr(b, attribute) for a, b in pairs)

    def errors(self, case: str) -> int:
        return sum(result.errors for result in self.results[case])

    def spread(self, case: str, attribute: str = "requests_per_s") -> tuple[float, float]:
        values = [getattr(result, attribute) for result in self.results[case]]
        return min(values), max(values)


def alternate(
    cases: Mapping[str, Callable[[], LoadResult]],
    rounds: int,
    *,
    progress: Callable[[str], None] | None = None,
) -> Rounds:
    """Run every case once per round, A B C, then B C A, …; ``rounds`` times."""
    names = list(cases)
    out = Rounds({name: [] for name in names})
    for number in range(rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            result = cases[name]()
            out.results[name].append(result)
            if progress is not None:
                progress(
                    f"round {number + 1}/{rounds} {name}: {result.requests_per_s:.0f} req/s, "
                    f"p99 {result.p99:.1f} ms, errors {result.errors}"
                )
    return out


# --- one server, several routes, side by side ---------------------------------------------

Routes = Mapping[str, tuple[str, Mapping[str, str]]]


def compare_routes(
    server: LiveServer,
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

    def case(path: str, headers: Mapping[str, str], duration: float) -> Callable[[], LoadResult]:
        return lambda: run_load(
            server.url + path,
            headers=dict(headers),
            connections=args.connections,
            duration=duration,
            tool=args.tool,
        )

    for path, headers in routes.values():  # warm-up: caches, allocator, CPU frequency
        case(path, headers, min(2.0, args.duration))()
    rounds = alternate(
        {name: case(path, headers, args.duration) for name, (path, headers) in routes.items()},
        args.rounds,
        progress=log,
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
        f"{machine_caption()}\nload generator: {load_tool_name(args.tool)}. "
        "first / route: median of the same-round req/s ratios (target >= 0.90x). "
        "errors: non-2xx answers plus socket errors, all rounds."
    )
    return table
