"""The revocation lags measured by a test run, kept in one JSON file.

Each measuring test calls :func:`record` with its kind of revocation (``sign-out``,
``logout-all``...) and the lags it saw, one per probe and revocation. One file per
test run merges what every pytest-xdist worker recorded (under a lock), so runs
side by side never mix: ``$KEYTURN_CLUSTER_LAG_FILE`` (set by
``tests/cluster/conftest.py`` for its run, which prints a summary at the end
whatever the capture settings) or ``<temp dir>/keyturn-cluster-lag-<run>.json``.
The newest report is also copied to ``<temp dir>/keyturn-cluster-lag.json`` and,
when that directory exists, to ``/tmp/kt/cluster-lag.json``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

#: One id per test run: xdist gives its workers a shared one; alone, one per process.
RUN_ID = os.environ.get("PYTEST_XDIST_TESTRUNUID") or uuid.uuid4().hex

#: The variable naming this run's report file.
REPORT_VARIABLE = "KEYTURN_CLUSTER_LAG_FILE"

#: Where the newest report is copied.
LATEST_COPIES = (
    Path(tempfile.gettempdir()) / "keyturn-cluster-lag.json",
    Path("/tmp/kt/cluster-lag.json"),
)


def new_report_path() -> Path:
    """A report file name of its own, for a new test run."""
    return Path(tempfile.gettempdir()) / f"keyturn-cluster-lag-{uuid.uuid4().hex[:12]}.json"


def report_path() -> Path:
    """Where the lags of this run are written."""
    configured = os.environ.get(REPORT_VARIABLE)
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"keyturn-cluster-lag-{RUN_ID[:12]}.json"


def percentile(values: Iterable[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile of ``values`` (non-empty)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary(samples_ms: list[float]) -> dict[str, Any]:
    """Count, p50, p99 and max of lags in milliseconds."""
    return {
        "n": len(samples_ms),
        "p50_ms": round(percentile(samples_ms, 50), 2),
        "p99_ms": round(percentile(samples_ms, 99), 2),
        "max_ms": round(max(samples_ms), 2),
    }


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def record(kind: str, lags_seconds: Iterable[float], **context: Any) -> dict[str, Any]:
    """Add the lags of one kind of revocation to this run's report; its summary."""
    samples = [round(lag * 1000, 3) for lag in lags_seconds]
    path = report_path()
    with _locked(path):
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError):
            report = {}
        if report.get("run") != RUN_ID:
            report = {"run": RUN_ID, "kinds": {}}
        kind_entry = report["kinds"].setdefault(kind, {"samples_ms": []})
        kind_entry["samples_ms"].extend(samples)
        kind_entry.update(summary(kind_entry["samples_ms"]))
        kind_entry.update(context)
        everything = [s for entry in report["kinds"].values() for s in entry["samples_ms"]]
        report["all"] = summary(everything)
        report["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        text = json.dumps(report, indent=2, sort_keys=True)
        _write(path, text)
        for copy in LATEST_COPIES:
            if copy.parent.is_dir() and copy != path:
                with contextlib.suppress(OSError):
                    _write(copy, text)
    return dict(kind_entry)


def _write(path: Path, text: str) -> None:
    """Replace ``path`` at once: a reader never sees half a report."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(text)
    os.replace(partial, path)


def read_report() -> dict[str, Any] | None:
    """This run's report, if a test recorded lags."""
    try:
        loaded: dict[str, Any] = json.loads(report_path().read_text())
    except (OSError, ValueError):
        return None
    return loaded


def format_report(report: dict[str, Any]) -> list[str]:
    """Lines for the terminal summary: one per kind, then all kinds together."""
    lines = [f"revocation lag across instances (ms), from {report_path()}:"]
    rows = [*sorted(report.get("kinds", {}).items()), ("all", report.get("all", {}))]
    for kind, entry in rows:
        if not entry:
            continue
        lines.append(
            f"  {kind:<22} n={entry['n']:<4} p50={entry['p50_ms']:>8.2f}"
            f" p99={entry['p99_ms']:>8.2f} max={entry['max_ms']:>8.2f}"
        )
    return lines
