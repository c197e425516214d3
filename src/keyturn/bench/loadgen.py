"""The asyncio load generator: keyturn's fallback when ``wrk`` is not installed.

``python -m keyturn.bench.loadgen`` reads one JSON job on stdin (``url``,
``headers``, ``connections``, ``duration``) and prints one JSON result: every
connection sends the same GET back to back for ``duration`` seconds (a closed
loop, like ``wrk``). It runs as its own process so it can be pinned to the load
generator's CPU and never shares a GIL with the benchmark's progress bars. uvloop
is used when installed (it comes with ``uvicorn[standard]``).

:func:`probe` is the open-loop counterpart used during a sign-in storm: requests
leave at a fixed rate whether or not earlier ones have answered, so a stalled
server shows up as latency instead of as fewer requests.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from keyturn.bench.stats import latency_percentiles
from keyturn.bench.wire import Connection, Target, build_request

__all__ = ["ClosedLoop", "closed_loop", "main", "probe", "run_async"]

T = TypeVar("T")

#: The name every result of this generator carries.
TOOL = "python-asyncio"

#: Seconds past its duration a run may take before it is cut short; also the
#: longest any single probe request may wait for its answer.
GRACE = 10.0


@dataclass
class ClosedLoop:
    """Raw outcome of :func:`closed_loop`."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        requests = len(self.latencies_ms)
        return {
            "tool": TOOL,
            "requests": requests,
            "seconds": self.seconds,
            "requests_per_s": requests / self.seconds if self.seconds else 0.0,
            "latency_ms": {str(k): v for k, v in latency_percentiles(self.latencies_ms).items()},
            "errors": self.errors,
        }


async def closed_loop(
    url: str, headers: Mapping[str, str], connections: int, duration: float
) -> ClosedLoop:
    """``connections`` keep-alive connections each sending GET ``url`` back to back
    for ``duration`` seconds. Answers of 400 and above count as errors (and their
    latency is kept: a fast 401 is still a request the server answered)."""
    target = Target.parse(url)
    request = build_request(target, "GET", headers=headers)
    result = ClosedLoop()
    deadline = time.perf_counter() + duration

    async def worker() -> None:
        connection = Connection(target)
        perf_counter = time.perf_counter
        try:
            while perf_counter() < deadline:
                start = perf_counter()
                try:
                    reply = await connection.send(request)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    result.errors += 1
                    await asyncio.sleep(0.01)
                    continue
                result.latencies_ms.append((perf_counter() - start) * 1000)
                if reply.status >= 400:
                    result.errors += 1
        finally:
            await connection.close()

    began = time.perf_counter()
    try:  # a request the server never answers must not hold the run forever
        await asyncio.wait_for(
            asyncio.gather(*(worker() for _ in range(connections))), duration + GRACE
        )
    except TimeoutError:
        result.errors += 1
    result.seconds = time.perf_counter() - began
    return result


async def probe(
    url: str,
    headers: Mapping[str, str],
    rate: float,
    seconds: float,
    *,
    expect: int = 200,
) -> tuple[list[float], int]:
    """GET ``url`` at ``rate`` requests/s for ``seconds`` (open loop): latencies in
    ms of the answers with status ``expect``, and how many requests failed."""
    target = Target.parse(url)
    request = build_request(target, "GET", headers=headers)
    idle: list[Connection] = []
    latencies: list[float] = []
    failures = 0

    async def one() -> None:
        nonlocal failures
        connection = idle.pop() if idle else Connection(target, timeout=GRACE)
        start = time.perf_counter()
        try:
            reply = await connection.send(request)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            failures += 1
            return
        latencies.append((time.perf_counter() - start) * 1000)
        failures += reply.status != expect
        idle.append(connection)

    tasks = []
    began = time.perf_counter()
    for n in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, began + n / rate - time.perf_counter()))
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    for connection in idle:
        await connection.close()
    return latencies, failures


def run_async(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine on uvloop when it is installed, else on asyncio's loop."""

    async def wrapper() -> T:
        return await make()

    try:
        import uvloop
    except ImportError:
        return asyncio.run(wrapper())
    return uvloop.run(wrapper())


def main() -> None:
    """Read a job from stdin, run :func:`closed_loop`, print the result as JSON."""
    job = json.loads(sys.stdin.read())
    outcome = run_async(
        lambda: closed_loop(
            job["url"], job.get("headers", {}), int(job["connections"]), float(job["duration"])
        )
    )
    sys.stdout.write(json.dumps(outcome.as_dict()) + "\n")


if __name__ == "__main__":
    main()
