"""Fuzz the whole HTTP API with schemathesis against a live ``keyturn serve``.

The ``schemathesis`` CLI reads the server's own ``/openapi.json`` and runs every
check it has (``--checks all``): no 5xx, every status, header and body as the
schema documents it, schema-valid requests accepted and invalid ones refused,
unsupported methods answered 405, authentication not ignored. The seeded account
of tests/fuzz/hooks.py gives the authenticated operations a session cookie with
its CSRF token, or a bearer token, so the fuzzer gets past the 401s as well.

``FUZZ_MAX_EXAMPLES`` (default 40 per operation) and ``FUZZ_SEED`` (default fixed,
so CI is reproducible; set another to explore) tune the run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from tests.fuzz.conftest import FuzzTarget

from keyturn.bench.servers import clean_environment

HERE = Path(__file__).parent
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "40"))
SEED = os.environ.get("FUZZ_SEED", "20261203")
#: The whole run's bound: CI's 2 cores do it in about three minutes.
RUN_TIMEOUT = 480

#: Operations the seeded account must reach with a 2xx at least once.
MUST_SUCCEED = (
    "GET /auth/whoami",
    "GET /auth/sessions",
    "POST /auth/logout",
    "POST /auth/logout-all",
    "POST /auth/token",
    "POST /auth/reauthenticate",
    "POST /auth/login",
    "POST /oauth/token",
    "POST /oauth/revoke",
    "POST /oauth/introspect",
)


def _schemathesis() -> list[str]:
    script = Path(sys.executable).with_name("schemathesis")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "schemathesis.cli"]


@pytest.mark.timeout(RUN_TIMEOUT + 60)
def test_fuzzer_finds_nothing(fuzz_target: FuzzTarget, tmp_path: Path) -> None:
    """Fuzzed with every check, each operation answers as documented: no 5xx, no crash."""
    fuzz_server = fuzz_target.server
    log = tmp_path / "calls.log"
    command = [
        *_schemathesis(),
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "--no-color",
        "run",
        f"{fuzz_server.url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        SEED,
        "--workers",
        "2",
        "--request-timeout",
        "30",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path / "report"),
    ]
    env = clean_environment(
        {
            # By module name: the hooks module must be importable (its dataclass).
            "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks",
            "PYTHONPATH": str(HERE.parent.parent),
            "FUZZ_BASE_URL": fuzz_server.url,
            "FUZZ_LOG": str(log),
            "FUZZ_CLIENT_ID": fuzz_target.client_id,
            "FUZZ_CLIENT_SECRET": fuzz_target.client_secret,
        }
    )
    started = time.monotonic()
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    print(f"schemathesis ran for {elapsed:.0f} s\n{output[-4000:]}")
    assert result.returncode == 0, f"schemathesis found problems:\n{output[-20000:]}"

    assert fuzz_server.returncode is None, f"keyturn exited:\n{fuzz_server.stderr[-5000:]}"
    assert "Traceback" not in fuzz_server.stderr, fuzz_server.stderr[-5000:]

    successes: dict[str, set[str]] = defaultdict(set)
    for line in log.read_text().splitlines():
        method, path, status, auth = line.split()
        if status.startswith("2"):
            successes[f"{method} {path}"].add(auth)
    unreached = [name for name in MUST_SUCCEED if not successes[name]]
    assert not unreached, f"never answered 2xx: {unreached}"
    assert {"cookie", "bearer"} <= successes["GET /auth/whoami"], successes["GET /auth/whoami"]
