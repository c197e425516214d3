"""A run as a Rich table, as JSON, and as a PNG plot (matplotlib, optional)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from keyturn.bench.errors import BenchError
from keyturn.bench.results import BenchResult, ModeResult

__all__ = ["MATPLOTLIB_MISSING", "render_json", "render_table", "require_matplotlib", "write_plot"]

MATPLOTLIB_MISSING = "--plot needs matplotlib, which is not installed: pip install 'keyturn[bench]'"


def _fmt(value: float | None, spec: str = ",.0f", suffix: str = "") -> str:
    if value is None or math.isnan(value):
        return "-"
    if math.isinf(value):
        return "never"
    return f"{value:{spec}}{suffix}"


def _row(result: ModeResult) -> list[str]:
    t, lag, mem, storm = (
        result.throughput,
        result.revocation_lag,
        result.memory,
        result.login_storm,
    )
    if lag is None:
        lag_text = "-"
    elif lag.note and not lag.samples_ms and not lag.not_refused:
        lag_text = "n/a (stateless)"
    elif lag.not_refused:
        lag_text = f"{_fmt(lag.p50_ms, '.1f')} / never ({lag.not_refused} not refused)"
    else:
        lag_text = f"{_fmt(lag.p50_ms, '.1f')} / {_fmt(lag.p99_ms, '.1f')}"
    return [
        result.mode.name,
        _fmt(t.whoami_rps) if t else "-",
        _fmt(t.livez_rps) if t else "-",
        _fmt(t.ratio, ".2f", "x") if t else "-",
        _fmt(t.auth_cost_us, ".0f") if t else "-",
        f"{_fmt(t.whoami_p50_ms, '.1f')} / {_fmt(t.whoami_p99_ms, '.1f')}" if t else "-",
        lag_text,
        f"{_fmt(mem.per_100k_mib, ',.1f')} (N={mem.items:,} {mem.item}s)" if mem else "-",
        (
            f"{_fmt(storm.idle_p99_ms, '.1f')} → {_fmt(storm.storm_p99_ms, '.1f')} "
            f"({_fmt(storm.p99_ratio, '.1f', 'x')})"
            if storm
            else "-"
        ),
    ]


def render_table(result: BenchResult) -> RenderableType:
    """The sessions-vs-tokens table, its caption (machine, tool, method) and any
    measurement that could not run."""
    settings = result.settings
    table = Table(
        title="keyturn: sessions vs tokens on this machine "
        f"({settings['rounds']} alternating rounds of {settings['duration_s']:g} s, "
        f"{settings['connections']} connections)"
    )
    table.add_column("mode")
    for column in (
        "whoami req/s",
        "/livez req/s",
        "whoami / livez",
        "auth cost µs",
        "whoami p50 / p99 ms",
        "revocation lag p50 / p99 ms",
        "MiB per 100k",
        f"p99 ms idle → {16} sign-ins",
    ):
        table.add_column(column, justify="right")
    notes: list[str] = []
    for mode in result.modes:
        if mode.status in ("unavailable", "failed"):
            table.add_row(mode.mode.name, Text(f"{mode.status}: {mode.reason}", style="yellow"))
            continue
        table.add_row(*_row(mode))
        notes += [f"{mode.mode.name} {name}: {reason}" for name, reason in mode.errors.items()]
        lag = mode.revocation_lag
        if lag is not None and lag.samples_ms:
            notes.append(
                f"{mode.mode.name} revocation lag: {len(lag.samples_ms) + lag.not_refused} "
                f"samples, max {_fmt(lag.max_ms, '.1f')} ms"
            )
    table.caption = (
        f"{result.machine.caption()}\nload generator: {result.tool}. "
        "whoami / livez: median of same-round req/s ratios (one server, one worker). "
        "auth cost: median per-round server time per request, whoami minus /livez. "
        "revocation lag: sign out on instance A, poll instance B (same stores) until 401. "
        "MiB per 100k: RSS growth of B after validating N new credentials, scaled "
        "(small N reads noisy). "
        "storm: p99 of whoami at "
        f"{settings['probe_rate']:g}/s idle vs during 16 concurrent sign-ins (server unpinned)."
    )
    if not notes:
        return table
    return Group(table, Text("\n".join(notes), style="dim"))


def render_json(result: BenchResult) -> str:
    """The run as one JSON document (stable keys; see ``docs/benchmarks.md``)."""
    return json.dumps(result.as_dict(), indent=2, sort_keys=False)


def require_matplotlib() -> Any:
    """``matplotlib.pyplot`` on the Agg backend.

    Raises:
        BenchError: matplotlib is not installed (one line that says how to get it).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BenchError(MATPLOTLIB_MISSING) from None
    return plt


def write_plot(result: BenchResult, path: Path) -> Path:
    """A PNG with two panels by mode: req/s (whoami and /livez), and p99 latency
    (whoami under load, idle probe, probe during the sign-in storm).

    Raises:
        BenchError: matplotlib is missing or the file cannot be written.
    """
    plt = require_matplotlib()
    measured = [mode for mode in result.modes if mode.throughput or mode.login_storm]
    names = [mode.mode.name for mode in measured]
    positions = list(range(len(names)))

    def values(pick: Any) -> list[float]:
        out = []
        for mode in measured:
            value = pick(mode)
            out.append(0.0 if value is None or math.isnan(value) else value)
        return out

    figure, (rps_axis, p99_axis) = plt.subplots(1, 2, figsize=(12, 4.8))
    width = 0.38
    rps_axis.bar(
        [x - width / 2 for x in positions],
        values(lambda m: m.throughput.whoami_rps if m.throughput else None),
        width,
        label="GET /auth/whoami (authenticated)",
    )
    rps_axis.bar(
        [x + width / 2 for x in positions],
        values(lambda m: m.throughput.livez_rps if m.throughput else None),
        width,
        label="GET /livez (no auth)",
    )
    rps_axis.set_title("requests per second (one worker)")
    rps_axis.set_ylabel("req/s")
    width = 0.27
    series = (
        ("whoami under load", lambda m: m.throughput.whoami_p99_ms if m.throughput else None),
        ("whoami idle probe", lambda m: m.login_storm.idle_p99_ms if m.login_storm else None),
        (
            "whoami during 16 sign-ins",
            lambda m: m.login_storm.storm_p99_ms if m.login_storm else None,
        ),
    )
    for index, (label, pick) in enumerate(series):
        p99_axis.bar([x + (index - 1) * width for x in positions], values(pick), width, label=label)
    p99_axis.set_title("p99 latency")
    p99_axis.set_ylabel("ms")
    for axis in (rps_axis, p99_axis):
        axis.set_xticks(positions)
        axis.set_xticklabels(names, rotation=15)
        axis.legend(fontsize="small")
    figure.suptitle(f"keyturn bench ({result.tool.split(' (')[0]})", fontsize="medium")
    figure.text(0.01, 0.01, result.machine.caption(), fontsize="x-small")
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    try:
        figure.savefig(path, format="png", dpi=110)
    except OSError as exc:
        raise BenchError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(figure)
    return path
