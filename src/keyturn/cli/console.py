"""Output helpers shared by the commands: Rich for tables, one-line errors."""

from __future__ import annotations

import sys
from typing import NoReturn

from rich.console import Console

#: Piped output is not wrapped at 80 columns, so scripts can read whole lines.
stdout = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 250)


def fail(message: str, *, code: int = 1) -> NoReturn:
    """Print ``keyturn: error: message`` as one line on stderr and exit."""
    line = " ".join(message.split())
    sys.stderr.write(f"keyturn: error: {line}\n")
    sys.exit(code)


def note(message: str) -> None:
    """An informational line on stderr (kept off stdout so output stays parseable)."""
    sys.stderr.write(f"keyturn: {message}\n")
