"""``keyturn serve`` under tracemalloc, for finding what a soak's RSS growth is.

Run ``python benchmarks/traced_serve.py REPORT -- serve ARGS...`` (``soak.py
--tracemalloc REPORT`` does). SIGUSR1 takes the baseline snapshot (the soak sends
it at the end of its warm-up); SIGUSR2 takes another and writes to ``REPORT`` the
allocations that grew most since the baseline, by source line with a short
traceback. tracemalloc slows the server down: use it to find a leak, not to
measure.
"""

from __future__ import annotations

import signal
import sys
import tracemalloc
from typing import Any

FRAMES = 6
TOP = 25


def main() -> None:
    report, separator, *argv = sys.argv[1:]
    if separator != "--":
        raise SystemExit("usage: traced_serve.py REPORT -- serve ARGS...")
    tracemalloc.start(FRAMES)
    baseline: list[tracemalloc.Snapshot] = []

    def take_baseline(*_: Any) -> None:
        baseline[:] = [tracemalloc.take_snapshot()]

    def write_report(*_: Any) -> None:
        now = tracemalloc.take_snapshot()
        lines = [f"traced now {tracemalloc.get_traced_memory()[0] / 2**20:.1f} MB"]
        if baseline:
            stats = now.compare_to(baseline[0], "traceback")
            grown = sum(stat.size_diff for stat in stats) / 2**20
            lines.append(f"grown since the baseline: {grown:+.1f} MB; largest growth first")
            for stat in stats[:TOP]:
                lines.append(f"{stat.size_diff / 2**10:+10.1f} KiB {stat.count_diff:+8d} blocks")
                lines += [f"    {frame}" for frame in stat.traceback.format()[-2 * FRAMES :]]
        with open(report, "w", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")

    signal.signal(signal.SIGUSR1, take_baseline)
    signal.signal(signal.SIGUSR2, write_report)
    from keyturn.cli import main as keyturn_main

    sys.argv = ["keyturn", *argv]
    keyturn_main()


if __name__ == "__main__":
    main()
