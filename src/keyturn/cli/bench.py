"""``keyturn bench``: sessions vs tokens on this machine, as a table (``--json``
for machines, ``--plot FILE`` for a PNG)."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import click

from keyturn.bench.errors import BenchError
from keyturn.bench.modes import MODES, Mode, parse_modes
from keyturn.cli.console import fail, note, stdout

if TYPE_CHECKING:
    from keyturn.bench.results import ModeResult


class RichProgress:
    """One progress bar per mode, on stderr (stdout stays for the table or JSON)."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TaskID,
            TextColumn,
            TimeElapsedColumn,
        )

        self.bars = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[mode]:<16}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=Console(stderr=True),
        )
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> RichProgress:
        self.bars.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.bars.stop()

    def start_mode(self, mode: Mode, total: int) -> None:
        self.tasks[mode.name] = self.bars.add_task("", total=total, mode=mode.name)

    def update(self, mode: Mode, text: str, *, advance: int = 0) -> None:
        self.bars.update(self.tasks[mode.name], description=text, advance=advance)

    def finish_mode(self, mode: Mode, result: ModeResult) -> None:
        task = self.tasks[mode.name]
        total = self.bars.tasks[task].total
        text = result.status if result.reason is None else f"{result.status}: {result.reason}"
        self.bars.update(task, description=text, completed=total)


@click.command()
@click.option(
    "--modes",
    default="all",
    show_default=True,
    metavar="LIST",
    help=f"Comma-separated modes to measure: {', '.join(MODES)}.",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0.2, max=120),
    default=None,
    metavar="S",
    help="Seconds per load run and per storm phase [default 5; 1 with --quick].",
)
@click.option(
    "--rounds",
    type=click.IntRange(min=1, max=20),
    default=None,
    metavar="N",
    help="Alternating rounds of throughput and of the storm [default 3; 1 with --quick].",
)
@click.option("--quick", is_flag=True, help="A short smoke run (about 15-20 s per mode).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on stdout.")
@click.option(
    "--plot",
    type=click.Path(path_type=Path, dir_okay=False, writable=True),
    default=None,
    help="Also write a PNG of req/s and p99 by mode (needs matplotlib: keyturn[bench]).",
)
@click.option(
    "--redis-url",
    default=None,
    metavar="URL",
    help="A Redis on this machine for the session-redis mode "
    "(default: start a private redis-server if one is on PATH).",
)
@click.option(
    "--tool",
    type=click.Choice(["auto", "wrk", "python"]),
    default="auto",
    show_default=True,
    help="Load generator: wrk if installed, else the built-in asyncio one.",
)
@click.option(
    "--connections",
    type=click.IntRange(min=1, max=1024),
    default=32,
    show_default=True,
    metavar="N",
    help="Connections of the load generator.",
)
@click.option(
    "--lag-samples",
    type=click.IntRange(min=1, max=1000),
    default=None,
    metavar="N",
    help="Revocations timed per mode [default 20; 3 with --quick].",
)
@click.option(
    "--memory-items",
    type=click.IntRange(min=100, max=100_000),
    default=None,
    metavar="N",
    help="Credentials validated for the memory figure [default 3000; 500 with --quick].",
)
def bench(
    modes: str,
    duration: float | None,
    rounds: int | None,
    quick: bool,
    as_json: bool,
    plot: Path | None,
    redis_url: str | None,
    tool: str,
    connections: int,
    lag_samples: int | None,
    memory_items: int | None,
) -> None:
    """Measure sessions vs tokens on this machine (servers on 127.0.0.1 only)."""
    # Imported here: the rest of the CLI should not pay for the benchmark at start-up.
    from keyturn.bench.deployment import check_redis_url
    from keyturn.bench.report import render_json, render_table, require_matplotlib, write_plot
    from keyturn.bench.runner import BenchOptions, run_bench

    try:
        chosen = tuple(parse_modes(modes))
        if redis_url is not None:
            check_redis_url(redis_url)
    except BenchError as exc:
        fail(str(exc), code=2)
    if plot is not None:
        try:
            require_matplotlib()
        except BenchError as exc:
            fail(str(exc), code=2)
    overrides = {
        "modes": chosen,
        "duration": duration,
        "storm_seconds": duration,
        "rounds": rounds,
        "storm_rounds": rounds,
        "redis_url": redis_url,
        "tool": tool,
        "connections": connections,
        "lag_samples": lag_samples,
        "memory_items": memory_items,
    }
    options = (
        BenchOptions.quick(**overrides) if quick else BenchOptions().with_overrides(**overrides)
    )
    try:
        with RichProgress() as progress:
            result = run_bench(options, progress)
    except BenchError as exc:
        fail(str(exc), code=2)
    if as_json:
        click.echo(render_json(result))
    else:
        stdout.print(render_table(result))
    if plot is not None:
        try:
            note(f"wrote {write_plot(result, plot)}")
        except BenchError as exc:
            fail(str(exc))
    failed = [mode for mode in result.modes if mode.status == "failed"]
    if failed:
        fail("; ".join(f"{mode.mode.name} failed: {mode.reason}" for mode in failed))
