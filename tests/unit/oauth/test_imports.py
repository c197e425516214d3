"""keyturn.oauth is core: it imports no web framework and, from the rest of
keyturn, only root modules (``clients``, wave 1's, also the stores and scopes)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import keyturn.oauth

PACKAGE = Path(keyturn.oauth.__file__).parent
#: Root modules the code-flow modules of keyturn.oauth may use.
ALLOWED = {"keyturn.errors", "keyturn.clock", "keyturn.principal"}
#: What ``clients`` (registration, allowlists, client authentication) uses besides.
CLIENTS_ALLOWED = ("keyturn.settings", "keyturn.stores.", "keyturn.tokens.scopes")


def imported_modules(path: Path) -> set[str]:
    """Every module named by an import statement in ``path``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_oauth_imports_only_root_keyturn_modules() -> None:
    """No module of keyturn.oauth reaches into sessions, tokens or the web layer."""
    for path in sorted(PACKAGE.glob("*.py")):
        keyturn_imports = {
            name for name in imported_modules(path) if name.split(".")[0] == "keyturn"
        }
        outside = {name for name in keyturn_imports if not name.startswith("keyturn.oauth")}
        if path.name == "clients.py":
            outside = {name for name in outside if not name.startswith(CLIENTS_ALLOWED)}
        assert outside <= ALLOWED, f"{path.name} imports {sorted(outside - ALLOWED)}"


def test_oauth_loads_no_web_framework() -> None:
    """Importing every keyturn.oauth module leaves starlette and fastapi unloaded."""
    modules = sorted(f"keyturn.oauth.{path.stem}" for path in PACKAGE.glob("[!_]*.py"))
    script = "\n".join(
        [
            "import importlib, sys",
            f"for name in {modules!r}:",
            "    importlib.import_module(name)",
            "print(','.join(sorted(m for m in sys.modules"
            " if m.split('.')[0] in ('starlette', 'fastapi'))))",
        ]
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"loaded: {result.stdout.strip()}"
