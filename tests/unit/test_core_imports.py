"""The core imports no web framework (STYLE habit 1)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

CORE_MODULES = (
    "keyturn",
    "keyturn.settings",
    "keyturn.errors",
    "keyturn.clock",
    "keyturn.stores.protocols",
    "keyturn.stores.records",
    "keyturn.stores.memory",
    "keyturn.tls",
)
#: Core modules written in parallel; checked once they exist.
OPTIONAL_CORE_MODULES = (
    "keyturn.accounts.passwords",
    "keyturn.accounts.service",
    "keyturn.runtime",
    "keyturn.stores.sql",
    "keyturn.keys.records",
    "keyturn.keys.encryption",
    "keyturn.keys.ring",
    "keyturn.tokens.access",
    "keyturn.tokens.cache",
    "keyturn.keys.rotation",
    "keyturn.tokens.scopes",
    "keyturn.tokens.bearer",
    "keyturn.tokens.grants",
    "keyturn.tokens.revoke",
    "keyturn.tokens.introspect",
)
FRAMEWORKS = ("starlette", "fastapi")


def _present(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def test_core_modules_do_not_import_the_web_framework() -> None:
    """Importing every core module leaves starlette and fastapi unloaded."""
    modules = list(CORE_MODULES) + [name for name in OPTIONAL_CORE_MODULES if _present(name)]
    script = "\n".join(
        [
            "import importlib, sys",
            f"for name in {modules!r}:",
            "    importlib.import_module(name)",
            f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r})",
            "print(','.join(loaded))",
        ]
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"core imported: {result.stdout.strip()}"
