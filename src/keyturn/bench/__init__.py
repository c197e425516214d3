"""``keyturn bench``: sessions against tokens, measured on the user's machine.

The package holds everything the command and the repository's ``benchmarks/``
scripts share, so that both measure the same way and a fresh ``pip install
keyturn`` can run it: servers started as ``keyturn serve`` processes on free
loopback ports with their own temporary directories and fresh SQLite files
(:mod:`~keyturn.bench.servers`), load generation with ``wrk`` or an asyncio
fallback (:mod:`~keyturn.bench.load`), alternating rounds and same-round ratios
(:mod:`~keyturn.bench.rounds`), the machine caption
(:mod:`~keyturn.bench.machine`), and the measurements themselves (throughput,
login storm, revocation lag, memory). :func:`~keyturn.bench.runner.run_bench`
runs them all. Traffic goes only to 127.0.0.1, and every step is bounded in time.

Nothing here imports a web framework: the servers it measures run in their own
processes.
"""

from __future__ import annotations

from keyturn.bench.errors import BenchError
from keyturn.bench.modes import MODES, Mode, parse_modes
from keyturn.bench.results import BenchResult, ModeResult
from keyturn.bench.runner import BenchOptions, run_bench

__all__ = [
    "MODES",
    "BenchError",
    "BenchOptions",
    "BenchResult",
    "Mode",
    "ModeResult",
    "parse_modes",
    "run_bench",
]
