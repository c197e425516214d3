"""One ``keyturn bench`` run: every mode, every measurement, bounded in time.

(Over 300 lines: one run's steps, in the order they happen, so the timing
bounds of each are visible at a glance.)

Per mode, in this order (each step in its own servers' temporary directory):

1. start instance A (one worker, pinned to the server CPU) on a fresh SQLite
   file (and the run's Redis for the Redis mode), register and sign in a user;
2. **throughput**: whoami against ``/livez`` in alternating rounds;
3. **login storm**: the whoami probe's p99 idle and during 16 sign-ins (A unpinned);
4. start instance B on A's stores;
5. **revocation lag**: sign out on A, poll B;
6. **memory**: B's RSS growth per credential validated.

A measurement that fails is recorded with its reason and the run goes on; a
mode whose server cannot start at all is reported ``unavailable`` (the Redis
mode without Redis) or ``failed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Protocol

import httpx

from keyturn.bench.deployment import Deployment, check_redis_url
from keyturn.bench.errors import BenchError
from keyturn.bench.lag import measure_lag
from keyturn.bench.load import Tool, load_tool_name
from keyturn.bench.machine import machine
from keyturn.bench.memory import measure_memory
from keyturn.bench.modes import MODES, Mode
from keyturn.bench.private_redis import RedisServer, redis_binary
from keyturn.bench.results import BenchResult, ModeResult
from keyturn.bench.rounds import alternate
from keyturn.bench.storm import measure_storm, storm_users
from keyturn.bench.throughput import LIVEZ, WHOAMI, throughput_cases, throughput_result, warm_up
from keyturn.errors import KeyturnError

__all__ = ["MEASUREMENT_ERRORS", "BenchOptions", "NullProgress", "Progress", "run_bench"]

#: What a failed measurement may raise; anything else is a bug and propagates.
MEASUREMENT_ERRORS = (
    BenchError,
    KeyturnError,
    OSError,
    httpx.HTTPError,
    asyncio.TimeoutError,
    asyncio.IncompleteReadError,
    subprocess.TimeoutExpired,
)


@dataclass(frozen=True)
class BenchOptions:
    """How long and how hard to measure. :meth:`quick` is the CI-fast preset."""

    modes: tuple[Mode, ...] = tuple(MODES.values())
    duration: float = 5.0  # seconds per load run
    rounds: int = 3  # alternating throughput rounds
    connections: int = 32
    tool: Tool = "auto"
    warmup: float = 2.0  # seconds of load per route before the rounds
    storm_rounds: int = 3
    storm_seconds: float = 5.0  # per phase (idle, storm)
    probe_rate: float = 100.0  # whoami requests/s of the storm probe
    lag_samples: int = 20
    memory_items: int = 3_000
    redis_url: str | None = None

    @classmethod
    def quick(cls, **overrides: Any) -> BenchOptions:
        """A smoke run: one short round of everything (about 15-20 s per mode)."""
        preset: dict[str, Any] = {
            "duration": 1.0,
            "rounds": 1,
            "warmup": 0.5,
            "storm_rounds": 1,
            "storm_seconds": 1.5,
            "lag_samples": 3,
            "memory_items": 500,
        }
        preset.update({name: value for name, value in overrides.items() if value is not None})
        return cls(**preset)

    def with_overrides(self, **overrides: Any) -> BenchOptions:
        """These options with every non-None override applied."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def steps(self, mode: Mode) -> int:
        """Progress units of one mode."""
        lag = 0 if mode.credential == "token" and mode.revocation_mode == "stateless" else 1
        return 1 + 2 * self.rounds + self.storm_rounds + 1 + lag * self.lag_samples + 1

    def as_dict(self) -> dict[str, Any]:
        """The settings of the run for ``--json``."""
        return {
            "modes": [mode.name for mode in self.modes],
            "duration_s": self.duration,
            "rounds": self.rounds,
            "connections": self.connections,
            "warmup_s": self.warmup,
            "storm_rounds": self.storm_rounds,
            "storm_seconds": self.storm_seconds,
            "probe_rate": self.probe_rate,
            "lag_samples": self.lag_samples,
            "memory_items": self.memory_items,
        }


class Progress(Protocol):
    """Where a run reports what it is doing (Rich bars in the CLI)."""

    def start_mode(self, mode: Mode, total: int) -> None: ...

    def update(self, mode: Mode, text: str, *, advance: int = 0) -> None: ...

    def finish_mode(self, mode: Mode, result: ModeResult) -> None: ...


class NullProgress:
    """Reports nothing."""

    def start_mode(self, mode: Mode, total: int) -> None:
        pass

    def update(self, mode: Mode, text: str, *, advance: int = 0) -> None:
        pass

    def finish_mode(self, mode: Mode, result: ModeResult) -> None:
        pass


def _measure(result: ModeResult, name: str, action: Callable[[], None]) -> None:
    try:
        action()
    except MEASUREMENT_ERRORS as exc:
        result.errors[name] = " ".join(str(exc).split()) or type(exc).__name__


@contextlib.contextmanager
def redis_for_run(options: BenchOptions, root: Path) -> Iterator[tuple[str | None, str | None]]:
    """The Redis the Redis mode uses: ``--redis-url`` if given, else a private
    ``redis-server`` started here. Yields ``(url, None)`` or ``(None, reason)``."""
    if not any(mode.store == "redis" for mode in options.modes):
        yield None, None
        return
    if options.redis_url is not None:
        yield check_redis_url(options.redis_url), None
        return
    if redis_binary() is None:
        yield None, "no --redis-url given and no redis-server or valkey-server on PATH"
        return
    server = RedisServer(root / "redis")
    try:
        server.start()
    except BenchError as exc:
        server.stop()
        yield None, str(exc)
        return
    try:
        yield server.url, None
    finally:
        server.stop()


def run_mode(
    mode: Mode,
    options: BenchOptions,
    root: Path,
    progress: Progress,
    *,
    redis_url: str | None = None,
    redis_missing: str | None = None,
) -> ModeResult:
    """Every measurement of one mode (see the module docstring)."""
    result = ModeResult(mode)
    progress.start_mode(mode, options.steps(mode))
    if mode.store == "redis" and redis_url is None:
        result.status, result.reason = "unavailable", redis_missing or "no Redis"
        progress.finish_mode(mode, result)
        return result
    with Deployment(mode, root, redis_url=redis_url) as deployment:
        progress.update(mode, "starting instance A")
        try:
            credential = deployment.start_primary()
        except MEASUREMENT_ERRORS as exc:
            result.status = "unavailable" if mode.store == "redis" else "failed"
            result.reason = " ".join(str(exc).split())
            progress.finish_mode(mode, result)
            return result
        progress.update(mode, "throughput: warm-up", advance=1)
        server = deployment.primary

        def throughput() -> None:
            warm_up(
                server,
                {WHOAMI: credential.headers, LIVEZ: {}},
                seconds=options.warmup,
                connections=options.connections,
                tool=options.tool,
            )
            cases = throughput_cases(
                server,
                credential,
                duration=options.duration,
                connections=options.connections,
                tool=options.tool,
            )
            rounds = alternate(
                cases,
                options.rounds,
                progress=lambda name, run: progress.update(
                    mode, f"throughput: {name} {run.requests_per_s:,.0f} req/s", advance=1
                ),
            )
            result.throughput = throughput_result(rounds, "whoami", "livez")

        def storm() -> None:
            progress.update(mode, "login storm: registering 16 users")
            emails = storm_users(server)
            result.login_storm = measure_storm(
                server,
                mode,
                credential,
                emails,
                rounds=options.storm_rounds,
                seconds=options.storm_seconds,
                rate=options.probe_rate,
                progress=lambda n: progress.update(mode, f"login storm: round {n}", advance=1),
            )

        def lag() -> None:
            progress.update(mode, "starting instance B")
            deployment.start_secondary()
            progress.update(mode, "revocation lag", advance=1)
            result.revocation_lag = measure_lag(
                server,
                deployment.secondary,
                mode,
                samples=options.lag_samples,
                progress=lambda n: progress.update(mode, f"revocation lag: sample {n}", advance=1),
            )

        def memory() -> None:
            progress.update(mode, f"memory: {options.memory_items:,} credentials")
            result.memory = measure_memory(deployment, items=options.memory_items)
            progress.update(mode, "done", advance=1)

        for name, action in (
            ("throughput", throughput),
            ("login_storm", storm),
            ("revocation_lag", lag),
            ("memory", memory),
        ):
            _measure(result, name, action)
    if result.errors:
        result.status = "partial"
    progress.finish_mode(mode, result)
    return result


def keyturn_version() -> str:
    """The installed keyturn's version."""
    try:
        return version("keyturn")
    except PackageNotFoundError:
        return "unknown"


def run_bench(options: BenchOptions, progress: Progress | None = None) -> BenchResult:
    """Run every mode of ``options`` in turn.

    Raises:
        BenchError: the run cannot start at all (a bad ``--redis-url``, ``--tool
            wrk`` without wrk).
    """
    tool = load_tool_name(options.tool)
    reporter = progress or NullProgress()
    results: list[ModeResult] = []
    with (
        tempfile.TemporaryDirectory(prefix="keyturn-bench-") as tmp,
        redis_for_run(options, Path(tmp)) as (redis_url, redis_missing),
    ):
        for mode in options.modes:
            results.append(
                run_mode(
                    mode,
                    options,
                    Path(tmp) / mode.name,
                    reporter,
                    redis_url=redis_url,
                    redis_missing=redis_missing,
                )
            )
    return BenchResult(
        machine=machine(),
        tool=tool,
        settings=options.as_dict(),
        modes=results,
        keyturn_version=keyturn_version(),
    )
