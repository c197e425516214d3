"""``keyturn bench`` refuses what it cannot do, in one line and before it starts
any server; and the pieces it measures with read what they are given."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from tests.support import Run

from keyturn.bench.errors import BenchError
from keyturn.bench.load import parse_wrk
from keyturn.bench.modes import parse_modes
from keyturn.bench.wire import Target

WRK_OUTPUT = """\
Running 5s test @ http://127.0.0.1:8000/auth/whoami
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     9.31ms    2.10ms  41.02ms   88.10%
    Req/Sec     3.33k   210.11     3.71k    72.00%
  Latency Distribution
     50%    9.01ms
     75%   10.12ms
     90%   11.50ms
     99%    1.20s
  16650 requests in 5.00s, 4.10MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   3330.12
Transfer/sec:    820.00KB
"""


def test_plot_without_matplotlib_is_one_line_and_starts_nothing(
    run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--plot without matplotlib fails at once with a one-line hint at the extra."""
    for name in [name for name in sys.modules if name.partition(".")[0] == "matplotlib"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    plot = tmp_path / "bench.png"
    started = time.monotonic()
    result = run("bench", "--quick", "--plot", str(plot))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "keyturn: error: --plot needs matplotlib, which is not installed: "
        "pip install 'keyturn[bench]'"
    ]
    assert not plot.exists()
    assert time.monotonic() - started < 10  # refused before any server was started


def test_unknown_mode_is_a_usage_error(run: Run) -> None:
    """A mistyped --modes names the valid ones."""
    result = run("bench", "--modes", "session-sqlite,tokens")
    code, out, err = result.exit_code, result.stdout, result.stderr
    assert code == 2
    assert out == ""
    assert "unknown mode tokens" in err
    assert "token-stateless" in err
    assert len(err.splitlines()) == 1


def test_redis_url_elsewhere_than_this_machine_is_refused(run: Run) -> None:
    """The benchmark sends traffic to 127.0.0.1 only, Redis included."""
    result = run("bench", "--modes", "session-redis", "--redis-url", "redis://10.0.0.7:6379/0")
    code, err = result.exit_code, result.stderr
    assert code == 2
    assert "127.0.0.1" in err and "10.0.0.7" in err
    assert err.startswith("keyturn: error: ")


def test_modes_are_parsed_in_canonical_order() -> None:
    """--modes accepts any order and 'all'."""
    assert [m.name for m in parse_modes("token-strict, session-sqlite")] == [
        "session-sqlite",
        "token-strict",
    ]
    assert len(parse_modes("all")) == 4
    with pytest.raises(BenchError):
        parse_modes("nope")


def test_load_targets_must_be_loopback_http() -> None:
    """The load generator never connects anywhere but this machine."""
    assert Target.parse("http://127.0.0.1:8000/livez") == Target("127.0.0.1", 8000, "/livez")
    for url in ("http://example.com/", "https://127.0.0.1/", "http://10.0.0.1:80/"):
        with pytest.raises(BenchError):
            Target.parse(url)


def test_wrk_output_is_read_with_units_and_errors() -> None:
    """req/s, percentiles in any unit, and socket plus non-2xx errors."""
    result = parse_wrk(WRK_OUTPUT)
    assert result.tool == "wrk"
    assert result.requests == 16650
    assert result.requests_per_s == pytest.approx(3330.12)
    assert result.latency_ms[50] == pytest.approx(9.01)
    assert result.latency_ms[99] == pytest.approx(1200.0)
    assert result.errors == 2 + 1 + 4
    with pytest.raises(BenchError):
        parse_wrk("wrk: something else entirely")
