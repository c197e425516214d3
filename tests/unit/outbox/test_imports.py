"""The outbox and mail packages import no web framework (STYLE habit 1)."""

from __future__ import annotations

import subprocess
import sys


def test_outbox_and_mail_import_without_a_web_framework() -> None:
    """Importing keyturn.outbox and keyturn.mail leaves starlette and fastapi unloaded."""
    script = (
        "import sys, keyturn.outbox, keyturn.mail\n"
        "print(','.join(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('starlette', 'fastapi'))))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"imported: {result.stdout.strip()}"
