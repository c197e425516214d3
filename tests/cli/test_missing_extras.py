"""A PostgreSQL URL without the ``[postgres]`` extra: one line naming the extra.

The commands run in a fresh interpreter where importing ``asyncpg`` fails, as it
does when keyturn was installed without ``keyturn[postgres]``; stderr must be the
one ``keyturn: error:`` line, never a traceback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from keyturn.bench.servers import clean_environment, free_port

#: Runs ``keyturn ARGS`` with ``asyncpg`` unimportable (``None`` in ``sys.modules``).
WITHOUT_ASYNCPG = (
    "import sys; sys.modules['asyncpg'] = None; from keyturn.cli import main; main(sys.argv[1:])"
)

URL = "postgresql+asyncpg://keyturn:s3cret@127.0.0.1:5432/keyturn"


@pytest.mark.parametrize(
    "args",
    [
        ["migrate", "--database-url", URL],
        ["serve", "--database-url", URL, "--port", str(free_port())],
    ],
    ids=["migrate", "serve"],
)
def test_postgres_without_asyncpg_is_one_line_naming_the_extra(
    args: list[str], tmp_path: Path
) -> None:
    """``migrate`` and ``serve`` on postgresql+asyncpg:// without asyncpg exit
    non-zero with one stderr line saying ``pip install 'keyturn[postgres]'`` (#10 item 11)."""
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_ASYNCPG, *args],
        capture_output=True,
        text=True,
        env=clean_environment(),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("keyturn: error: "), lines[0]
    assert "pip install 'keyturn[postgres]'" in lines[0]
    assert "s3cret" not in result.stderr + result.stdout


def test_the_engine_factory_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine factory turns the missing driver into a ConfigurationError (#10 item 11)."""
    from keyturn.errors import ConfigurationError
    from keyturn.stores.sql import create_engine_for

    monkeypatch.setitem(sys.modules, "asyncpg", None)
    with pytest.raises(ConfigurationError, match=r"pip install 'keyturn\[postgres\]'"):
        create_engine_for(URL)
