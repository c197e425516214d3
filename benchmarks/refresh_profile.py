"""``token_endpoint.py --profile``: the refresh grant against a server under
cProfile, with every SQL statement counted (``benchmarks/profiled_serve.py``).

Prints the statements per refresh, the driver time each takes, and the top of the
profile sorted by own time and by cumulative time. Only the load counts: the
set-up before it (registrations, password grants) is dropped with SIGUSR1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import pstats
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from keyturn.bench.accounts import register
from keyturn.bench.errors import BenchError
from keyturn.bench.machine import SERVER_CPU
from keyturn.bench.servers import STOP_TIMEOUT, KeyturnServer, keyturn_command
from oauth_load import fresh_families, measured, refresh_chains

PROFILED = Path(__file__).with_name("profiled_serve.py")


class ProfiledServer(KeyturnServer):
    """``keyturn serve`` under cProfile with its SQL counted
    (``benchmarks/profiled_serve.py``); both written when it stops."""

    def __init__(self, profile: Path, sql: Path, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.profile, self.sql = profile, sql

    def command(self) -> list[str]:
        serve = super().command()[len(keyturn_command()) :]
        return [sys.executable, str(PROFILED), str(self.profile), str(self.sql), "--", *serve]

    def forget_setup(self) -> None:
        """Drop what was measured so far: only the load that follows counts."""
        if self.process is not None:
            self.process.send_signal(signal.SIGUSR1)
            time.sleep(0.5)

    def stop(self) -> None:
        """SIGINT first: under cProfile, SIGINT ends uvicorn cleanly and the profile
        is written; SIGTERM/SIGKILL (the base class) only if it lingers."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(STOP_TIMEOUT)
        super().stop()


def profile_refresh(
    args: argparse.Namespace,
    root: Path,
    *,
    database_url: str | None = None,
    extra: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> str:
    """The SQL per refresh and the top of a cProfile of the server during
    ``--profile-chains`` refresh chains (on ``database_url``, migrated, with
    ``extra`` serve arguments; a SQLite file of its own by default)."""
    out, sql = root / "refresh.prof", root / "sql.json"
    server = ProfiledServer(
        out, sql, tuple(extra), workdir=root / "profiled", database_url=database_url, env=env
    )
    server.start(cpu=SERVER_CPU)
    chains = args.profile_chains
    try:
        emails = [f"profile{n}@bench.example" for n in range(chains)]
        for email in emails:
            register(server, email)
        tokens = fresh_families(server, emails)
        server.forget_setup()
        figure = measured(server, lambda: refresh_chains(server.url, tokens, args.duration))
    finally:
        server.stop()
    if not out.exists() or not sql.exists():
        raise BenchError("the profiled server wrote no profile")
    refreshes = len(figure.outcome.latencies_ms) or 1
    text = [
        f"refresh grant, {chains} chain(s), server under cProfile (slower than without): "
        f"{figure.text()}, {figure.outcome.seconds:.1f} s",
        f"--- SQL per refresh grant ({refreshes} refreshes; driver time is wall time "
        "inside the DBAPI call; on PostgreSQL a statement's round trip) ---",
    ]
    statements = json.loads(sql.read_text())
    total = sum(row["count"] for row in statements)
    driver = sum(row["seconds"] for row in statements)
    text.append(
        f"{total / refreshes:.1f} statements per refresh, {driver / refreshes * 1000:.2f} ms "
        f"of driver time per refresh; wall per refresh "
        f"{figure.outcome.seconds * chains / refreshes * 1000:.1f} ms"
    )
    for row in statements[:15]:
        text.append(
            f"{row['count'] / refreshes:5.2f}/refresh {row['seconds'] / row['count'] * 1e3:7.3f} ms"
            f"  {row['statement']}"
        )
    for key in ("tottime", "cumulative"):
        buffer = _StatsText()
        pstats.Stats(str(out), stream=buffer).sort_stats(key).print_stats(args.profile_top)
        text.append(f"--- sorted by {key} ---\n{buffer.body()}")
    return "\n".join(text)


class _StatsText:
    """A text stream for pstats, keeping only the table."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def body(self) -> str:
        lines = "".join(self.parts).splitlines()
        start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
        return "\n".join(line.replace(str(Path.cwd()), ".") for line in lines[start:] if line)
