"""The core imports no web framework (STYLE habit 1): every module outside
keyturn.web, keyturn.cli and keyturn.bench, found by walking the package."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import keyturn

#: Where HTTP, the command line and the benchmark harness live; everything else is core.
NOT_CORE = ("keyturn.web", "keyturn.cli", "keyturn.bench")
FRAMEWORKS = ("starlette", "fastapi")


def core_modules() -> list[str]:
    """Every importable core module (Alembic's migration scripts are not modules)."""
    names = [module.name for module in pkgutil.walk_packages(keyturn.__path__, "keyturn.")]
    return sorted(
        name for name in names if not name.startswith(NOT_CORE) and ".migrations" not in name
    )


def test_the_walk_finds_every_domain() -> None:
    """The walk reaches every core package, so a new module is checked without a list."""
    found = {name.split(".")[1] for name in core_modules() if name.count(".") >= 1}
    assert {"accounts", "fanout", "keys", "sessions", "stores", "tokens", "oauth"} <= found


def test_core_modules_do_not_import_the_web_framework() -> None:
    """Importing every core module leaves starlette and fastapi unloaded."""
    script = "\n".join(
        [
            "import importlib, sys",
            f"for name in {core_modules()!r}:",
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
