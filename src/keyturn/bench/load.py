"""Drive one URL with GETs and read req/s and latency percentiles.

``wrk -t1 -cN -dS --latency`` when it is installed (Debian package ``wrk``),
pinned to the load generator's CPU; otherwise :mod:`keyturn.bench.loadgen`, a
closed-loop asyncio generator in its own pinned process. Every result names the
tool that produced it: the two do not give the same absolute req/s (the Python
generator spends more CPU per request), so only same-tool, same-round ratios
compare.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from keyturn.bench.errors import BenchError
from keyturn.bench.machine import CLIENT_CPU, pinned
from keyturn.bench.wire import Target

__all__ = [
    "LoadResult",
    "Tool",
    "load_tool",
    "load_tool_name",
    "parse_wrk",
    "run_load",
    "wrk_path",
]

Tool = Literal["auto", "wrk", "python"]


@dataclass(frozen=True)
class LoadResult:
    """One run of the load generator against one URL."""

    tool: str  # "wrk" or "python-asyncio"
    requests: int
    seconds: float
    requests_per_s: float
    latency_ms: dict[int, float]  # percentile -> milliseconds (50, 75, 90, 99)
    errors: int  # answers of 400 and above plus socket errors

    @property
    def p50(self) -> float:
        return self.latency_ms[50]

    @property
    def p99(self) -> float:
        return self.latency_ms[99]

    @property
    def us_per_request(self) -> float:
        """Server time per request when the server is saturated (one core)."""
        return 1e6 / self.requests_per_s if self.requests_per_s else float("inf")


def wrk_path() -> str | None:
    """The ``wrk`` binary, if installed."""
    return shutil.which("wrk")


def load_tool(tool: Tool = "auto") -> Literal["wrk", "python"]:
    """Which generator ``tool`` resolves to on this machine.

    Raises:
        BenchError: ``wrk`` was asked for and is not installed.
    """
    if tool == "wrk" and wrk_path() is None:
        raise BenchError("--tool wrk: wrk is not installed (e.g. apt-get install wrk)")
    if tool == "python" or wrk_path() is None:
        return "python"
    return "wrk"


def load_tool_name(tool: Tool = "auto") -> str:
    """What :func:`run_load` uses, for captions."""
    if load_tool(tool) == "wrk":
        return "wrk (-t1, --latency)"
    reason = "asked for" if tool == "python" else "wrk not installed"
    return f"python-asyncio ({reason}; a Python client: its req/s are lower than wrk's)"


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_VALUE = r"([\d.]+)(us|ms|s|m|h)"


def parse_wrk(output: str) -> LoadResult:
    """Read req/s, latency percentiles and errors from ``wrk --latency`` output.

    Raises:
        BenchError: the output is not what ``wrk --latency`` prints.
    """

    def ms(number: str, unit: str) -> float:
        return float(number) * _UNITS_MS[unit]

    latency = {
        int(pct): ms(number, unit)
        for pct, number, unit in re.findall(rf"^\s+(\d+)%\s+{_VALUE}\s*$", output, re.M)
    }
    total = re.search(r"(\d+) requests in " + _VALUE, output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if total is None or rate is None or 99 not in latency:
        raise BenchError(f"cannot read wrk output: {output[:200]!r}")
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


def _run_wrk(
    url: str, headers: Mapping[str, str], connections: int, duration: float, cpu: int | None
) -> LoadResult:
    binary = wrk_path()
    if binary is None:
        raise BenchError("wrk is not installed")
    seconds = max(1, round(duration))  # wrk takes whole seconds only
    command = [binary, "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout=5s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    with pinned(cpu):
        done = subprocess.run(  # noqa: S603 - wrk found on PATH, our own arguments
            command, capture_output=True, text=True, timeout=duration + 30, check=False
        )
    if done.returncode != 0:
        output = (done.stderr.strip() or done.stdout.strip()).splitlines() or ["no output"]
        raise BenchError(f"wrk failed ({done.returncode}): {output[0][:200]}")
    return parse_wrk(done.stdout)


def _run_python(
    url: str, headers: Mapping[str, str], connections: int, duration: float, cpu: int | None
) -> LoadResult:
    job = {"url": url, "headers": dict(headers), "connections": connections, "duration": duration}
    with pinned(cpu):
        done = subprocess.run(
            [sys.executable, "-m", "keyturn.bench.loadgen"],
            input=json.dumps(job),
            capture_output=True,
            text=True,
            timeout=duration + 30,
            check=False,
        )
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["no output"]
        raise BenchError(f"the asyncio load generator failed: {lines[-1]}")
    data: dict[str, Any] = json.loads(done.stdout)
    return LoadResult(
        tool=str(data["tool"]),
        requests=int(data["requests"]),
        seconds=float(data["seconds"]),
        requests_per_s=float(data["requests_per_s"]),
        latency_ms={int(k): float(v) for k, v in data["latency_ms"].items()},
        errors=int(data["errors"]),
    )


def run_load(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    connections: int = 32,
    duration: float = 10.0,
    cpu: int | None = CLIENT_CPU,
    tool: Tool = "auto",
) -> LoadResult:
    """GET ``url`` from ``connections`` keep-alive connections for ``duration``
    seconds, the generator pinned to ``cpu``.

    Raises:
        BenchError: ``url`` is not loopback, or the generator failed.
    """
    Target.parse(url)  # loopback only, plain HTTP
    run = _run_wrk if load_tool(tool) == "wrk" else _run_python
    return run(url, dict(headers or {}), connections, duration, cpu)
