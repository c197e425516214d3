"""Authenticated ``GET /auth/whoami`` against the no-auth ``GET /livez`` of the
same server, in the same rounds.

``/livez`` is a small JSON answer through the same middleware stack with no I/O:
the strictest no-auth baseline the server has. The server runs one worker pinned
to one CPU and the load generator keeps it saturated, so ``1 / req/s`` is the
server time one request costs; the **auth cost** is that time for whoami minus
that time for ``/livez`` (median of the per-round differences). It is everything
an authenticated request does more than a no-auth one: reading the credential,
the cache hit, the revocation check, and the whoami handler's own JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from keyturn.bench.accounts import Credential
from keyturn.bench.load import LoadResult, Tool, run_load
from keyturn.bench.results import ThroughputResult
from keyturn.bench.rounds import Rounds
from keyturn.bench.servers import ServerProcess
from keyturn.bench.stats import median

__all__ = ["LIVEZ", "WHOAMI", "route_case", "throughput_cases", "throughput_result", "warm_up"]

WHOAMI = "/auth/whoami"
LIVEZ = "/livez"

Case = Callable[[], LoadResult]


def route_case(
    server: ServerProcess,
    path: str,
    headers: Mapping[str, str],
    *,
    duration: float,
    connections: int,
    tool: Tool,
) -> Case:
    """One load run against ``path`` of ``server``, as a callable for the rounds."""
    url = server.url + path
    fixed = dict(headers)
    return lambda: run_load(
        url, headers=fixed, connections=connections, duration=duration, tool=tool
    )


def throughput_cases(
    server: ServerProcess,
    credential: Credential,
    *,
    duration: float,
    connections: int,
    tool: Tool,
    prefix: str = "",
) -> dict[str, Case]:
    """``{prefix}whoami`` with the credential and ``{prefix}livez`` without."""
    return {
        f"{prefix}{name}": route_case(
            server, path, headers, duration=duration, connections=connections, tool=tool
        )
        for name, path, headers in (
            ("whoami", WHOAMI, credential.headers),
            ("livez", LIVEZ, {}),
        )
    }


def warm_up(
    server: ServerProcess,
    routes: Mapping[str, Mapping[str, str]],
    *,
    seconds: float,
    connections: int,
    tool: Tool,
) -> None:
    """Load each route briefly first: caches, allocator and CPU frequency settle."""
    for path, headers in routes.items():
        route_case(server, path, headers, duration=seconds, connections=connections, tool=tool)()


def throughput_result(rounds: Rounds, whoami: str, livez: str) -> ThroughputResult:
    """The :class:`ThroughputResult` of two cases measured in the same rounds."""
    ratios = rounds.ratios(whoami, livez)
    costs = rounds.differences(whoami, livez, "us_per_request")
    return ThroughputResult(
        whoami_rps=rounds.median(whoami),
        livez_rps=rounds.median(livez),
        ratio=median(ratios),
        ratio_min=min(ratios),
        ratio_max=max(ratios),
        auth_cost_us=median(costs),
        whoami_p50_ms=rounds.median(whoami, "p50"),
        whoami_p99_ms=rounds.median(whoami, "p99"),
        livez_p50_ms=rounds.median(livez, "p50"),
        livez_p99_ms=rounds.median(livez, "p99"),
        errors=rounds.errors(whoami) + rounds.errors(livez),
        rounds=len(ratios),
        tool=rounds.tool,
    )
