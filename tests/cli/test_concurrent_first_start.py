"""Several processes starting on one new SQLite file migrate one after the other."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

KEYTURN = str(Path(sys.executable).parent / "keyturn")


def test_simultaneous_migrations_of_a_new_sqlite_file_all_succeed(tmp_path: Path) -> None:
    """Without the migration lock the second process failed with "table users
    already exists" (two servers, or a CLI command beside a starting server)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYTURN_")}
    processes = [
        subprocess.Popen(
            [KEYTURN, "migrate", "--database-url", url],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [process.communicate(timeout=90) for process in processes]
    failures = [
        err for process, (_, err) in zip(processes, results, strict=True) if process.returncode
    ]
    assert not failures, failures
    listed = subprocess.run(
        [KEYTURN, "user", "list", "--database-url", url],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
