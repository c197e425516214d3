"""``keyturn bench`` end to end: a real run of two modes, as a user starts it.

One quick run (``--quick``, two modes) starts real ``keyturn serve`` processes, so
it is the slow part and one test checks it several ways (a module-scoped fixture
would run once per pytest-xdist worker). Nothing here asserts how fast anything
is: the numbers only have to exist, be positive and sit under the documented keys.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from keyturn.bench.servers import clean_environment, keyturn_command

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

TOP_KEYS = {"schema", "keyturn_version", "machine", "load_tool", "settings", "modes"}
MODE_KEYS = {
    "status",
    "reason",
    "label",
    "credential",
    "store",
    "revocation_mode",
    "throughput",
    "revocation_lag",
    "memory",
    "login_storm",
    "errors",
}
THROUGHPUT_KEYS = {
    "whoami_rps",
    "livez_rps",
    "ratio",
    "ratio_min",
    "ratio_max",
    "auth_cost_us",
    "whoami_p50_ms",
    "whoami_p99_ms",
    "livez_p50_ms",
    "livez_p99_ms",
    "errors",
    "rounds",
    "tool",
}
LAG_KEYS = {"p50_ms", "p99_ms", "max_ms", "samples", "not_refused", "timeout_s", "note"}
MEMORY_KEYS = {"per_100k_mib", "item", "items", "rss_before_mib", "rss_after_mib", "method"}
STORM_KEYS = {
    "logins",
    "probe_rate",
    "idle_p50_ms",
    "idle_p99_ms",
    "storm_p50_ms",
    "storm_p99_ms",
    "p99_ratio",
    "logins_per_s",
    "failures",
    "rounds",
}
LAG_SAMPLES = 2


def _positive(section: dict[str, Any], *keys: str) -> None:
    for key in keys:
        value = section[key]
        assert isinstance(value, int | float) and value > 0, f"{key} = {value!r}"


def check_documented_keys_and_measured_numbers(report: dict[str, Any]) -> None:
    """Every documented key, and real, positive figures for both modes."""
    assert set(report) == TOP_KEYS
    assert report["schema"] == "keyturn-bench/1"
    assert report["machine"]["cpu_count"] >= 1
    assert report["load_tool"]
    assert set(report["modes"]) == {"session-sqlite", "token-stateless"}
    for name, mode in report["modes"].items():
        assert set(mode) == MODE_KEYS, name
        assert mode["status"] == "ok", (name, mode["reason"], mode["errors"])
        assert mode["errors"] == {}
        throughput = mode["throughput"]
        assert set(throughput) == THROUGHPUT_KEYS
        _positive(throughput, "whoami_rps", "livez_rps", "ratio", "whoami_p99_ms", "livez_p99_ms")
        assert throughput["errors"] == 0
        assert isinstance(throughput["auth_cost_us"], float)
        storm = mode["login_storm"]
        assert set(storm) == STORM_KEYS
        assert storm["logins"] == 16
        _positive(storm, "idle_p99_ms", "storm_p99_ms", "p99_ratio", "logins_per_s")
        memory = mode["memory"]
        assert set(memory) == MEMORY_KEYS
        assert memory["items"] == report["settings"]["memory_items"]
        _positive(memory, "rss_before_mib", "rss_after_mib")
        assert isinstance(memory["per_100k_mib"], float)
        assert set(mode["revocation_lag"]) == LAG_KEYS


def check_session_revocation_lag(report: dict[str, Any]) -> None:
    """Every revocation on instance A was timed until instance B refused it."""
    lag = report["modes"]["session-sqlite"]["revocation_lag"]
    assert lag["samples"] + lag["not_refused"] == LAG_SAMPLES
    assert lag["not_refused"] == 0, lag["note"]
    _positive(lag, "p50_ms", "p99_ms", "max_ms")
    assert lag["p99_ms"] >= lag["p50_ms"]


def check_stateless_lag_is_explained(report: dict[str, Any]) -> None:
    """The stateless mode has nothing to revoke: null figures and a note, not a number."""
    mode = report["modes"]["token-stateless"]
    lag = mode["revocation_lag"]
    assert lag["p99_ms"] is None
    assert lag["samples"] == 0
    assert "stateless" in lag["note"]
    assert mode["memory"]["item"] == "access token"


@pytest.mark.timeout(240)
def test_quick_run_prints_json_for_two_modes_and_writes_a_png(tmp_path: Path) -> None:
    """`keyturn bench --quick --json --plot FILE` on session-sqlite and token-stateless:
    one JSON document with the documented keys and measured numbers on stdout, and
    a PNG. (One run checked several ways: it is the slow part.)"""
    plot = tmp_path / "bench.png"
    done = subprocess.run(
        [
            *keyturn_command(),
            "bench",
            "--quick",
            "--json",
            "--modes",
            "session-sqlite,token-stateless",
            "--lag-samples",
            str(LAG_SAMPLES),
            "--plot",
            str(plot),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=clean_environment(),
        timeout=200,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)  # nothing but the JSON document on stdout
    check_documented_keys_and_measured_numbers(report)
    check_session_revocation_lag(report)
    check_stateless_lag_is_explained(report)
    assert plot.read_bytes()[:8] == PNG_SIGNATURE
    assert f"wrote {plot}" in done.stderr
