"""How much a password costs on this machine.

Run ``python benchmarks/passwords.py [--runs N]``. Prints the median time to hash
and to verify one password with keyturn's parameters, next to argon2-cffi's
RFC 9106 low-memory preset for comparison, and the machine it ran on.

``main()`` prints a list of sections; each section is a function returning a Rich
renderable, so further measurements (an HTTP login storm, say) are one more
function in ``SECTIONS``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from argon2.profiles import RFC_9106_LOW_MEMORY
from rich.console import Console, RenderableType
from rich.table import Table

from keyturn.passwords import PasswordHasher

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
        f"{platform.platform()} | {platform.machine()} | {platform.python_implementation()} "
        f"{platform.python_version()} | os.cpu_count()={cpus}\n"
        "x keyturn: verify time relative to keyturn's. CPU ms: process CPU time of one "
        "verify. max/s: CPU-bound sign-in ceiling on all CPUs = CPUs x 1000 / CPU ms"
    )
    return table


#: Each section takes the run count and returns something Rich can print.
SECTIONS: list[Callable[[int], RenderableType]] = [password_hashing_section]


def main(argv: list[str] | None = None) -> None:
    """Run every section and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=15, help="samples per median (default 15)")
    args = parser.parse_args(argv)
    console = Console()
    for section in SECTIONS:
        console.print(section(args.runs))


if __name__ == "__main__":
    main()
