"""A DPoP-authenticated ``GET /auth/whoami`` next to a bearer one and ``/livez``,
on one ``keyturn serve`` (issue #16, item 4).

Run ``python benchmarks/dpop_whoami.py [--duration S] [--rounds N]
[--connections N]``. It needs ``wrk`` (Debian package ``wrk``).

One server (one uvicorn worker pinned to the server CPU, SQLite, strict
revocation, ``--password-grant`` to sign the benchmark user in), ``wrk`` pinned to
the other CPU (as in ``benchmarks/claim.py``), three cases in alternating rounds:

- ``/livez``: no credential (the floor of the stack);
- ``whoami bearer``: ``Authorization: Bearer`` with an unbound access token;
- ``whoami DPoP``: ``Authorization: DPoP`` with a DPoP-bound token (ES256 key)
  and a fresh proof on every request: each proof is signed before the run (its own
  ``jti``, ``ath`` of the token, ``iat`` of now), so the server does on every
  request what a real one does: parse and verify the proof (one ES256 signature
  check), compare ``htm``/``htu``/``ath``/``jkt``, and insert the ``jti`` into the
  in-process replay cache. A proof used twice would be a 401 and count as an error.

Every case is built by the same Lua ``request()`` (``dpop_whoami.lua``). The
table gives req/s, p50/p99 latency and the ratios (medians of same-round ratios):
DPoP whoami / bearer whoami and each against ``/livez``. It also gives the server
process's CPU time per request (``CPU µs/req``: ``/proc/<pid>/stat`` around each
run, median of the rounds) and what DPoP whoami costs over bearer whoami in it
(``CPU Δ``, median of the same-round differences): on a machine shared with other
work the req/s (wall clock) swing with the neighbours' load, while CPU per
request only gains their cache misses.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from joserfc import jws
from joserfc.jwk import ECKey
from rich.console import Console
from rich.table import Table

from keyturn.bench.accounts import PASSWORD, register
from keyturn.bench.errors import BenchError
from keyturn.bench.load import LoadResult, parse_wrk, wrk_path
from keyturn.bench.machine import CLIENT_CPU, SERVER_CPU, machine_caption, pinned
from keyturn.bench.rounds import Rounds, alternate
from keyturn.bench.servers import KeyturnServer
from keyturn.dpop import access_token_hash

SCRIPT = Path(__file__).with_name("dpop_whoami.lua")
EMAIL = "dpop-bench@example.com"
#: Proofs signed per expected request (the rate can rise between rounds).
HEADROOM = 1.6


class ProofSigner:
    """Signs DPoP proofs with one ES256 client key (joserfc, as a client would)."""

    def __init__(self) -> None:
        self.key = ECKey.generate_key("P-256")
        self.header = {"typ": "dpop+jwt", "alg": "ES256", "jwk": self.key.as_dict(private=False)}
        self.registry = jws.JWSRegistry(algorithms=["ES256"])
        self.prefix = secrets.token_hex(4)
        self.count = 0

    def proof(self, htm: str, htu: str, *, token: str | None = None) -> str:
        self.count += 1
        ath = f',"ath":"{access_token_hash(token)}"' if token else ""
        claims = (
            f'{{"jti":"{self.prefix}-{self.count}","htm":"{htm}","htu":"{htu}",'
            f'"iat":{int(time.time())}{ath}}}'
        )
        return jws.serialize_compact(self.header, claims.encode(), self.key, registry=self.registry)


def tokens(server: KeyturnServer, signer: ProofSigner) -> tuple[str, str]:
    """A bearer and a DPoP-bound access token of the benchmark user."""
    form = {"grant_type": "password", "username": EMAIL, "password": PASSWORD}
    url = f"{server.url}/oauth/token"
    with httpx.Client() as client:
        plain = client.post(url, data=form)
        bound = client.post(url, data=form, headers={"DPoP": signer.proof("POST", url)})
    for response in (plain, bound):
        if response.status_code != 200:
            raise BenchError(f"POST /oauth/token: {response.status_code} {response.text[:200]}")
    if bound.json()["token_type"] != "DPoP":
        raise BenchError("the token endpoint did not bind the token to the DPoP key")
    return plain.json()["access_token"], bound.json()["access_token"]


def run_wrk(
    url: str, headers: dict[str, str], connections: int, duration: int, proofs: Path | None
) -> LoadResult:
    """``wrk`` with the benchmark's script, pinned to the load generator's CPU."""
    binary = wrk_path()
    if binary is None:
        raise BenchError("wrk is not installed (apt-get install wrk)")
    command = [binary, "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout=5s"]
    command += ["-s", str(SCRIPT)]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    if proofs is not None:
        command += ["--", str(proofs)]
    with pinned(CLIENT_CPU):
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=duration + 30, check=False
        )
    if done.returncode != 0:
        raise BenchError(f"wrk failed: {(done.stderr or done.stdout).strip()[:200]}")
    return parse_wrk(done.stdout)


def server_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (every thread), from
    ``/proc/<pid>/stat``; None where there is no ``/proc``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


#: Per case, the server's CPU µs per request of each round.
CpuPerRequest = dict[str, list[float]]


def with_cpu(
    name: str, case: Callable[[], LoadResult], pid: int, cpu: CpuPerRequest
) -> Callable[[], LoadResult]:
    """``case``, recording the server's CPU µs per request of each run in ``cpu``."""

    def run() -> LoadResult:
        before = server_cpu_seconds(pid)
        result = case()
        after = server_cpu_seconds(pid)
        if before is not None and after is not None and result.requests:
            cpu.setdefault(name, []).append((after - before) / result.requests * 1e6)
        return result

    return run


def measure(
    duration: int, rounds: int, connections: int, console: Console
) -> tuple[Rounds, CpuPerRequest]:
    """Start the server and run the three cases in alternating rounds."""
    with tempfile.TemporaryDirectory(prefix="keyturn-dpop-bench-") as tmp:
        root = Path(tmp)
        server = KeyturnServer((), workdir=root / "server", name="keyturn (DPoP)")
        server.args = ["--password-grant", "--issuer", server.url]
        server.start(cpu=SERVER_CPU)
        try:
            register(server, EMAIL)
            signer = ProofSigner()
            bearer_token, dpop_token = tokens(server, signer)
            whoami = f"{server.url}/auth/whoami"
            expected = {"rate": 0.0}

            def dpop_case() -> LoadResult:
                # Sign the proofs of this run now: their iat must be fresh.
                count = int(max(expected["rate"], 2000.0) * duration * HEADROOM)
                path = root / "proofs.txt"
                lines = (signer.proof("GET", whoami, token=dpop_token) for _ in range(count))
                path.write_text("\n".join(lines) + "\n")
                result = run_wrk(
                    whoami, {"Authorization": f"DPoP {dpop_token}"}, connections, duration, path
                )
                if result.requests > count:
                    raise BenchError(f"{result.requests} requests but only {count} proofs")
                return result

            def bearer_case() -> LoadResult:
                result = run_wrk(
                    whoami, {"Authorization": f"Bearer {bearer_token}"}, connections, duration, None
                )
                expected["rate"] = max(expected["rate"], result.requests_per_s)
                return result

            cpu: CpuPerRequest = {}
            plain: dict[str, Callable[[], LoadResult]] = {
                "whoami bearer": bearer_case,
                "whoami DPoP": dpop_case,
                "/livez": lambda: run_wrk(f"{server.url}/livez", {}, connections, duration, None),
            }
            cases = {name: with_cpu(name, case, server.pid, cpu) for name, case in plain.items()}
            bearer_case()  # warm-up, and the first estimate of the rate
            results = alternate(
                cases,
                rounds,
                progress=lambda name, r: console.log(
                    f"{name}: {r.requests_per_s:,.0f} req/s, p99 {r.latency_ms[99]:.2f} ms, "
                    f"{r.errors} errors"
                ),
            )
            return results, cpu
        finally:
            server.stop()


def report(results: Rounds, cpu: CpuPerRequest, console: Console) -> None:
    """The table: each case's medians, its ratios and the server's CPU per request."""
    table = Table(title="DPoP whoami next to bearer whoami and /livez", caption=machine_caption())
    columns = ("case", "req/s", "p50 ms", "p99 ms", "errors", "vs /livez", "vs bearer")
    for column in (*columns, "CPU µs/req", "CPU Δ"):
        table.add_column(column, justify="left" if column == "case" else "right")
    bearer_cpu = cpu.get("whoami bearer", [])
    for case in ("/livez", "whoami bearer", "whoami DPoP"):
        p50 = sorted(r.latency_ms[50] for r in results.results[case])
        p99 = sorted(r.latency_ms[99] for r in results.results[case])
        own = cpu.get(case, [])
        over = [mine - base for mine, base in zip(own, bearer_cpu, strict=False)]
        table.add_row(
            case,
            f"{results.median(case):,.0f}",
            f"{p50[len(p50) // 2]:.2f}",
            f"{p99[len(p99) // 2]:.2f}",
            str(results.errors(case)),
            f"{results.ratio(case, '/livez'):.2f}x",
            "" if case == "/livez" else f"{results.ratio(case, 'whoami bearer'):.2f}x",
            f"{statistics.median(own):.0f}" if own else "n/a",
            f"{statistics.median(over):+.0f}" if over and case == "whoami DPoP" else "",
        )
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per run (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    args = parser.parse_args(argv)
    console = Console()
    try:
        results, cpu = measure(args.duration, args.rounds, args.connections, console)
    except BenchError as exc:
        console.print(f"[red]benchmark failed:[/red] {exc}")
        return 1
    report(results, cpu, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
