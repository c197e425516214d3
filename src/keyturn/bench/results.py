"""What one ``keyturn bench`` run measured, and its stable JSON form.

Every measurement is optional: one that could not run is ``None`` in Python and
``null`` in JSON, with the reason in the mode's ``errors`` (or its ``reason`` when
the whole mode was unavailable). The keys below are a contract
(``docs/benchmarks.md`` documents them); new keys may be added, none renamed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from keyturn.bench.machine import Machine
from keyturn.bench.modes import Mode

__all__ = [
    "SCHEMA",
    "BenchResult",
    "LagResult",
    "MemoryResult",
    "ModeResult",
    "StormResult",
    "ThroughputResult",
]

#: The ``schema`` value of the JSON document.
SCHEMA = "keyturn-bench/1"


def _number(value: float | None, digits: int = 3) -> float | None:
    if value is None or math.isnan(value) or math.isinf(value):
        return None
    return round(value, digits)


@dataclass(frozen=True)
class ThroughputResult:
    """``GET /auth/whoami`` against ``GET /livez`` on one server, same rounds."""

    whoami_rps: float
    livez_rps: float
    ratio: float  # median of per-round whoami/livez req/s ratios
    ratio_min: float
    ratio_max: float
    auth_cost_us: float  # median per-round (1/whoami - 1/livez) in µs
    whoami_p50_ms: float
    whoami_p99_ms: float
    livez_p50_ms: float
    livez_p99_ms: float
    errors: int
    rounds: int
    tool: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "whoami_rps": _number(self.whoami_rps, 1),
            "livez_rps": _number(self.livez_rps, 1),
            "ratio": _number(self.ratio),
            "ratio_min": _number(self.ratio_min),
            "ratio_max": _number(self.ratio_max),
            "auth_cost_us": _number(self.auth_cost_us, 1),
            "whoami_p50_ms": _number(self.whoami_p50_ms),
            "whoami_p99_ms": _number(self.whoami_p99_ms),
            "livez_p50_ms": _number(self.livez_p50_ms),
            "livez_p99_ms": _number(self.livez_p99_ms),
            "errors": self.errors,
            "rounds": self.rounds,
            "tool": self.tool,
        }


@dataclass(frozen=True)
class LagResult:
    """Revoke on instance A, poll instance B until it answers 401."""

    samples_ms: list[float]  # one per revocation that B refused in time
    not_refused: int  # revocations B still accepted when the sample timed out
    timeout_s: float
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    note: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "p50_ms": _number(self.p50_ms),
            "p99_ms": _number(self.p99_ms),
            "max_ms": _number(self.max_ms),
            "samples": len(self.samples_ms),
            "not_refused": self.not_refused,
            "timeout_s": self.timeout_s,
            "note": self.note,
        }


@dataclass(frozen=True)
class MemoryResult:
    """Server RSS growth after it validated ``items`` distinct credentials."""

    item: str  # "session" or "access token"
    items: int
    rss_before_bytes: int
    rss_after_bytes: int
    method: str = "server RSS delta"

    @property
    def per_100k_mib(self) -> float:
        delta = self.rss_after_bytes - self.rss_before_bytes
        return delta / self.items * 100_000 / 2**20

    def as_dict(self) -> dict[str, Any]:
        return {
            "per_100k_mib": _number(self.per_100k_mib, 1),
            "item": self.item,
            "items": self.items,
            "rss_before_mib": _number(self.rss_before_bytes / 2**20, 1),
            "rss_after_mib": _number(self.rss_after_bytes / 2**20, 1),
            "method": self.method,
        }


@dataclass(frozen=True)
class StormResult:
    """Authenticated GETs at a fixed rate, idle and during concurrent sign-ins."""

    logins: int  # concurrent sign-in clients
    probe_rate: float
    idle_p50_ms: float
    idle_p99_ms: float
    storm_p50_ms: float
    storm_p99_ms: float
    p99_ratio: float  # median of per-round storm/idle p99 ratios
    logins_per_s: float
    failures: int
    rounds: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "logins": self.logins,
            "probe_rate": self.probe_rate,
            "idle_p50_ms": _number(self.idle_p50_ms),
            "idle_p99_ms": _number(self.idle_p99_ms),
            "storm_p50_ms": _number(self.storm_p50_ms),
            "storm_p99_ms": _number(self.storm_p99_ms),
            "p99_ratio": _number(self.p99_ratio),
            "logins_per_s": _number(self.logins_per_s, 1),
            "failures": self.failures,
            "rounds": self.rounds,
        }


@dataclass
class ModeResult:
    """Everything measured for one mode."""

    mode: Mode
    status: str = "ok"  # "ok", "unavailable" (could not run at all), "failed"
    reason: str | None = None
    throughput: ThroughputResult | None = None
    revocation_lag: LagResult | None = None
    memory: MemoryResult | None = None
    login_storm: StormResult | None = None
    errors: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        def part(value: Any) -> Any:
            return None if value is None else value.as_dict()

        return {
            "status": self.status,
            "reason": self.reason,
            "label": self.mode.label,
            "credential": self.mode.credential,
            "store": self.mode.store,
            "revocation_mode": self.mode.revocation_mode,
            "throughput": part(self.throughput),
            "revocation_lag": part(self.revocation_lag),
            "memory": part(self.memory),
            "login_storm": part(self.login_storm),
            "errors": dict(self.errors),
        }


@dataclass
class BenchResult:
    """A whole run."""

    machine: Machine
    tool: str
    settings: dict[str, Any]
    modes: list[ModeResult]
    keyturn_version: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "keyturn_version": self.keyturn_version,
            "machine": self.machine.as_dict(),
            "load_tool": self.tool,
            "settings": dict(self.settings),
            "modes": {result.mode.name: result.as_dict() for result in self.modes},
        }
