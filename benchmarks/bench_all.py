"""Every benchmark in one command (``make bench``, issue #17 item 7): the machine
first, then every target with its ratio and PASS/MISS, then each script's tables.

Run ``python benchmarks/bench_all.py [--strict] SCRIPT [SCRIPT ...]`` where each
SCRIPT is a file in ``benchmarks/`` with its arguments, as one word
(``"soak.py --duration 120"``). The scripts run one after another (never two at
once: they pin servers to the same CPU); their progress goes to stderr as it
happens, their tables are kept and printed after the summary. Each script that
checks targets hands its verdicts over through ``BENCH_VERDICTS``
(``benchmarks/summary.py``). ``--strict`` exits 1 unless every target passed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.rule import Rule
from rich.table import Table

from keyturn.bench.load import load_tool_name
from keyturn.bench.machine import machine
from summary import ENV

HERE = Path(__file__).resolve().parent


def memory_gib() -> str:
    """Total memory from ``/proc/meminfo``."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def describe_machine(console: Console, started: tuple[float, float, float]) -> None:
    """What every number below was measured on."""
    now = machine()
    table = Table(title="The machine", show_header=False)
    table.add_column("what")
    table.add_column("value")
    table.add_row("CPU model", now.cpu_model)
    table.add_row("cores (logical CPUs)", str(now.cpu_count))
    table.add_row("memory", memory_gib())
    table.add_row("platform", now.platform)
    table.add_row("Python", now.python)
    table.add_row(
        "load average (1/5/15 min)",
        "at start "
        + " ".join(f"{x:.2f}" for x in started)
        + ", at end "
        + " ".join(f"{x:.2f}" for x in now.load_average),
    )
    table.add_row("CPU pinning", "server CPU 0, load generator CPU 1" if now.pinning else "none")
    table.add_row("HTTP load generator", load_tool_name())
    console.print(table)


def summary_table(rows: list[dict[str, object]], failed: list[str]) -> Table:
    labels = {True: "[green]PASS[/]", False: "[bold red]MISS[/]", None: "[yellow]N/A[/]"}
    table = Table(title="Every target, ratios first")
    for column in ("script", "target", "measured", "aim", "verdict", "note"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["source"]),
            str(row["claim"]),
            str(row["measured"]),
            str(row["target"]),
            labels[row["passed"]],  # type: ignore[index]
            str(row["note"]),
        )
    passed = sum(row["passed"] is True for row in rows)
    missed = sum(row["passed"] is False for row in rows)
    unknown = sum(row["passed"] is None for row in rows)
    table.caption = f"{passed} PASS, {missed} MISS, {unknown} N/A." + (
        f" Scripts that failed to run: {', '.join(failed)}." if failed else ""
    )
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("scripts", nargs="+", help='"script.py --its --arguments"')
    parser.add_argument("--strict", action="store_true", help="exit 1 unless all PASS")
    args = parser.parse_args(argv)
    started = os.getloadavg()
    outputs: list[tuple[str, str, float, int]] = []
    with tempfile.TemporaryDirectory(prefix="keyturn-bench-all-") as tmp:
        verdict_file = Path(tmp) / "verdicts.jsonl"
        verdict_file.touch()
        for spec in args.scripts:
            words = shlex.split(spec)
            print(f"bench_all: running {spec}", file=sys.stderr, flush=True)
            start = time.monotonic()
            done = subprocess.run(
                [sys.executable, str(HERE / words[0]), *words[1:]],
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, ENV: str(verdict_file), "COLUMNS": "200"},
                check=False,
            )
            outputs.append((spec, done.stdout, time.monotonic() - start, done.returncode))
        rows = [json.loads(line) for line in verdict_file.read_text().splitlines() if line]
    console = Console(width=None if sys.stdout.isatty() else 200)
    describe_machine(console, started)
    failed = [spec for spec, _, _, code in outputs if code not in (0, 1)]
    console.print(summary_table(rows, failed))
    for spec, text, seconds, code in outputs:
        console.print(Rule(f"{spec} ({seconds:.0f} s, exit {code})"))
        sys.stdout.write(text)
        sys.stdout.flush()
    if failed:
        return 2
    return 0 if not args.strict or all(row["passed"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
