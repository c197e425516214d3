"""Worker scaling on one host: ``keyturn serve --workers 2`` against ``--workers 1``
(issue #17, item 2).

Run ``python benchmarks/workers.py [--duration S] [--rounds N] [--modes LIST]
[--connections N] [--lag-samples N] [--tool auto|wrk|python]``.

For every mode (session on SQLite, session on Redis when ``redis-server`` is
installed, token strict, token stateless):

1. **Throughput.** A one-worker and a two-worker server on their own SQLite file
   (and one private Redis), loaded in alternating rounds with ``GET /auth/whoami``
   by the same load generator and the same connections. Nothing is pinned: the
   workers, like the load generator, get whatever CPU the kernel gives them, in
   both configurations alike. Target: the two-worker req/s at **>= 1.7x** the
   one-worker req/s (median of the same-round ratios).
2. **Revocation between sibling workers.** On the two-worker server: sign in,
   open several keep-alive connections and let each accept the credential (so
   both workers hold it in their caches), find which worker owns each connection
   (``ss -tnp``), sign out on one, and poll every connection until it answers
   401. The lag that counts is the slowest connection owned by the *other*
   worker: it learned of the sign-out through the fan-out (the change-log poll
   on SQLite, pub/sub on Redis). Target: p99 **< 100 ms**. The stateless token
   mode does not check revocation, by design, and is shown as not applicable.

The whole table says what machine it ran on; every figure is measured here and now.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from keyturn.bench.accounts import PASSWORD, Credential, register, session_token
from keyturn.bench.accounts import login as bench_login
from keyturn.bench.errors import BenchError
from keyturn.bench.load import LoadResult, load_tool, run_load
from keyturn.bench.machine import machine_caption
from keyturn.bench.modes import Mode, parse_modes
from keyturn.bench.private_redis import RedisServer, redis_binary
from keyturn.bench.rounds import alternate
from keyturn.bench.servers import KeyturnServer
from keyturn.bench.stats import percentile
from keyturn.bench.wire import Connection, Target
from summary import record_verdicts

console = Console(stderr=True)

WHOAMI = "/auth/whoami"
SCALING_TARGET = 1.7
LAG_TARGET_MS = 100.0
#: Seconds a sibling may take before a sample counts as not refused.
GIVE_UP_S = 6.0
#: Keep-alive connections per lag sample (spread over both workers by the kernel).
LAG_CONNECTIONS = 8


@dataclass(frozen=True)
class Verdict:
    """One target, for ``make bench``'s summary (benchmarks/summary.py)."""

    claim: str
    measured: str
    target: str
    passed: bool | None
    note: str = ""


@dataclass
class Server:
    """One started ``keyturn serve --workers N`` and a signed-in credential."""

    process: KeyturnServer
    credential: Credential


def serve_args(mode: Mode, workers: int, redis_url: str | None) -> list[str]:
    args = mode.serve_args(redis_url)
    args[args.index("--workers") + 1] = str(workers)
    return args


def start(mode: Mode, workers: int, root: Path, redis_url: str | None) -> Server:
    """A server with ``workers`` workers, one account, and the credential of ``mode``."""
    process = KeyturnServer(serve_args(mode, workers, redis_url), workdir=root)
    process.start(cpu=None)
    email = f"scale-{workers}@bench.example"
    register(process, email)
    credential = bench_login(process, email)
    if mode.credential == "token":
        with process.client() as client:
            token = session_token(client, credential)
        credential = Credential(email, "token", {"Authorization": f"Bearer {token}"})
    return Server(process, credential)


def worker_of_connections(port: int) -> dict[int | None, int]:
    """Client-side port -> pid of the worker that owns the accepted socket."""
    out = subprocess.run(
        ["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    owners: dict[int | None, int] = {}
    for line in out.splitlines():
        fields = line.split()
        match = re.search(r"pid=(\d+)", line)
        if match is None or len(fields) < 4:
            continue
        peer = fields[3]  # the client's address:port
        owners[int(peer.rsplit(":", 1)[1])] = int(match.group(1))
    return owners


async def _lag_sample(server: KeyturnServer, mode: Mode) -> tuple[float | None, bool]:
    """One sign-out seen by every connection; (the sibling's lag in ms or None if
    it never refused within GIVE_UP_S, whether a sibling connection was found)."""
    target = Target.parse(server.url)
    email = "lag@bench.example"
    a = Connection(target, timeout=10.0)
    conns = [Connection(target, timeout=10.0) for _ in range(LAG_CONNECTIONS)]
    try:
        body = json.dumps({"email": email, "password": PASSWORD}).encode()
        reply = await a.request(
            "POST", "/auth/login", headers={"Content-Type": "application/json"}, body=body
        )
        if reply.status != 200:
            raise BenchError(f"POST /auth/login: {reply.status}")
        cookie = next(
            value.split(";", 1)[0] for name, value in reply.headers if name == "set-cookie"
        )
        csrf = str(json.loads(reply.body)["csrf_token"])
        headers = {"Cookie": cookie}
        if mode.credential == "token":
            minted = await a.request(
                "POST", "/auth/token", headers={"Cookie": cookie, "X-CSRF-Token": csrf}
            )
            token = str(json.loads(minted.body)["access_token"])
            headers = {"Authorization": f"Bearer {token}"}
        for conn in conns:
            for _ in range(3):
                if (await conn.request("GET", WHOAMI, headers=headers)).status != 200:
                    raise BenchError("a fresh credential was refused")
        owners = worker_of_connections(target.port)
        a_owner = owners.get(a.local_port())
        siblings = [c for c in conns if owners.get(c.local_port()) not in (None, a_owner)]
        await asyncio.sleep(random.uniform(0.0, 0.1))
        logout_headers = {"Cookie": cookie, "X-CSRF-Token": csrf}
        if mode.credential == "token":
            logout_headers = headers
        out = await a.request("POST", "/auth/logout", headers=logout_headers)
        if out.status != 204:
            raise BenchError(f"POST /auth/logout: {out.status}")
        revoked_at = time.perf_counter()
        pending = list(siblings)
        lag: float | None = None
        while pending:
            elapsed = time.perf_counter() - revoked_at
            if elapsed > GIVE_UP_S:
                return None, bool(siblings)
            still = []
            for conn in pending:
                if (await conn.request("GET", WHOAMI, headers=headers)).status != 401:
                    still.append(conn)
            pending = still
            lag = (time.perf_counter() - revoked_at) * 1000
            if pending:
                await asyncio.sleep(0.002)
        return lag, bool(siblings)
    finally:
        await a.close()
        for conn in conns:
            await conn.close()


def measure_sibling_lag(server: KeyturnServer, mode: Mode, samples: int) -> tuple[str, bool | None]:
    """p50/p99 of the sibling worker's lag as text, and whether it met the target."""
    if mode.revocation_mode == "stateless":
        return "n/a (stateless: revocation is not checked)", None
    with contextlib.suppress(BenchError):
        register(server, "lag@bench.example")
    lags: list[float] = []
    missing = never = 0
    for _ in range(samples):
        lag, had_sibling = asyncio.run(_lag_sample(server, mode))
        if not had_sibling:
            missing += 1
        elif lag is None:
            never += 1
        else:
            lags.append(lag)
    if not lags:
        text = f"not measured ({missing} samples without a sibling connection, {never} never)"
        return text, None if not never else False
    p99 = percentile(lags, 99)
    passed = p99 < LAG_TARGET_MS and not never
    text = (
        f"p50 {percentile(lags, 50):.1f} ms, p99 {p99:.1f} ms ({len(lags)} samples"
        f"{f', {never} never refused' if never else ''}) {'PASS' if passed else 'MISS'}"
    )
    return text, passed


@contextlib.contextmanager
def private_redis(root: Path, wanted: bool) -> Iterator[str | None]:
    if not wanted or redis_binary() is None:
        yield None
        return
    redis = RedisServer(root / "redis").start()
    try:
        yield redis.url
    finally:
        redis.stop()


def report_round(mode_name: str, workers: str, result: LoadResult) -> None:
    console.log(f"{mode_name} {workers} worker(s): {result.requests_per_s:,.0f} req/s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per load run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--lag-samples", type=int, default=20)
    parser.add_argument("--modes", default="all")
    parser.add_argument("--tool", choices=("auto", "wrk", "python"), default="auto")
    args = parser.parse_args()
    if shutil.which("ss") is None:
        raise SystemExit("workers.py needs `ss` (iproute2) to tell the workers apart")
    modes = parse_modes(args.modes)
    table = Table(title="keyturn serve --workers 2 / --workers 1, whoami")
    for column in ("mode", "1 worker req/s", "2 workers req/s", "ratio (rounds)", "target"):
        table.add_column(column, justify="right" if "req/s" in column else "left")
    table.add_column("sibling revocation lag (2 workers, target < 100 ms)")
    verdicts: list[Verdict] = []
    with tempfile.TemporaryDirectory(prefix="keyturn-workers-") as tmp:
        root = Path(tmp)
        with private_redis(root, any(mode.store == "redis" for mode in modes)) as redis_url:
            for mode in modes:
                if mode.store == "redis" and redis_url is None:
                    table.add_row(mode.name, "-", "-", "N/A: no redis-server", "", "")
                    verdicts.append(
                        Verdict(f"{mode.name}: --workers 2 / 1", "-", ">= 1.7x", None, "no redis")
                    )
                    continue
                console.log(f"{mode.name}: starting one- and two-worker servers")
                one = start(mode, 1, root / f"{mode.name}-1", redis_url)
                two = start(mode, 2, root / f"{mode.name}-2", redis_url)
                try:

                    def case(server: Server) -> Callable[[], LoadResult]:
                        return lambda: run_load(
                            server.process.url + WHOAMI,
                            headers=server.credential.headers,
                            connections=args.connections,
                            duration=args.duration,
                            cpu=None,
                            tool=args.tool,
                        )

                    for server in (one, two):  # warm-up
                        run_load(
                            server.process.url + WHOAMI,
                            headers=server.credential.headers,
                            connections=args.connections,
                            duration=min(2.0, args.duration),
                            cpu=None,
                            tool=args.tool,
                        )
                    rounds = alternate(
                        {"1": case(one), "2": case(two)},
                        args.rounds,
                        progress=functools.partial(report_round, mode.name),
                    )
                    ratio = rounds.ratio("2", "1")
                    spread = rounds.ratios("2", "1")
                    passed = ratio >= SCALING_TARGET
                    measured = (
                        f"{ratio:.2f}x = {rounds.median('2'):,.0f} / {rounds.median('1'):,.0f}"
                        f" req/s (rounds {min(spread):.2f}-{max(spread):.2f})"
                    )
                    verdicts.append(
                        Verdict(f"{mode.name}: --workers 2 / 1", measured, ">= 1.7x", passed)
                    )
                    console.log(f"{mode.name}: sibling revocation lag")
                    lag, lag_passed = measure_sibling_lag(two.process, mode, args.lag_samples)
                    verdicts.append(
                        Verdict(
                            f"{mode.name}: revocation lag to the sibling worker p99",
                            lag,
                            "< 100 ms",
                            lag_passed,
                        )
                    )
                    table.add_row(
                        mode.name,
                        f"{rounds.median('1'):,.0f}",
                        f"{rounds.median('2'):,.0f}",
                        f"{ratio:.2f}x ({min(spread):.2f}-{max(spread):.2f}) "
                        + ("PASS" if passed else "MISS"),
                        f">= {SCALING_TARGET}x",
                        lag,
                    )
                finally:
                    one.process.stop()
                    two.process.stop()
    table.caption = (
        machine_caption(pinned=False) + f" | load generator: {load_tool(args.tool)}, unpinned, "
        f"{args.connections} connections; server and generator share the CPUs"
    )
    Console(width=170).print(table)
    record_verdicts("workers.py", verdicts)
    return 1 if any(verdict.passed is False for verdict in verdicts) else 0


if __name__ == "__main__":
    sys.exit(main())
