"""The documentation site cannot rot: generated references cover everything, the nav
covers every page, and the README's links into docs/ resolve."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import click
import pytest
import yaml

from keyturn.cli import cli
from keyturn.settings import Settings
from keyturn.web.app import create_app

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs"
#: Pages that exist only in the build (docs/hooks/reference.py makes them).
GENERATED = {"reference/cli.md", "reference/http.md"}


@pytest.fixture(scope="module")
def reference() -> ModuleType:
    """docs/hooks/reference.py, the mkdocs hook that generates the reference pages."""
    spec = importlib.util.spec_from_file_location("docs_reference", DOCS / "hooks" / "reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _commands(
    command: click.Command, path: tuple[str, ...] = ("keyturn",)
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))


def test_every_cli_command_and_its_own_options_are_in_the_cli_reference(
    reference: ModuleType,
) -> None:
    """Each command of the Click tree has a section, with its arguments and own options."""
    page = reference.cli_reference_markdown()
    settings = {*Settings.model_fields, "config"}
    commands = list(_commands(cli))
    assert len(commands) > 10
    for path, command in commands:
        if command.hidden:
            continue
        assert f"`{' '.join(path)}`" in page, " ".join(path)
        for param in command.params:
            if isinstance(param, click.Option) and param.name not in settings:
                assert f"`{param.opts[0]}`" in page, (path, param.opts)
    assert "`keyturn user import`" in page


def test_every_openapi_route_is_in_the_http_reference(reference: ModuleType) -> None:
    """Every (method, path) of create_app(...).openapi() has a section in the HTTP page."""
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"))
    page = reference.http_reference_markdown(app)
    schema: dict[str, Any] = app.openapi()
    operations = [
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]
    assert ("POST", "/oauth/token") in operations
    for method, path in operations:
        assert f"### {method} `{path}`" in page, (method, path)


def test_routes_outside_the_schema_are_listed_too(reference: ModuleType) -> None:
    """The browser pages and /metrics (not in the OpenAPI schema) are still referenced."""
    app = create_app(Settings(database_url="sqlite+aiosqlite:///:memory:"))
    page = reference.http_reference_markdown(app)
    for method, path in [
        ("GET", "/login"),
        ("POST", "/login"),
        ("GET", "/register"),
        ("GET", "/account"),
        ("POST", "/logout"),
        ("GET", "/metrics"),
    ]:
        assert f"| {method} | `{path}` |" in page, (method, path)
    for method, path, _ in reference.iter_app_routes(app):
        assert f"`{path}`" in page, (method, path)


def _nav_pages(entries: list[Any]) -> Iterator[str]:
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        if isinstance(value, list):
            yield from _nav_pages(value)
        else:
            yield str(value)


class _MkdocsLoader(yaml.SafeLoader):
    """The safe loader, reading mkdocs' ``!!python/name:`` tags (the Mermaid fence's
    formatter) as plain strings instead of importing anything."""


_MkdocsLoader.add_multi_constructor(
    "tag:yaml.org,2002:python/name:", lambda loader, suffix, node: suffix
)


def test_the_nav_lists_every_page_and_only_pages_that_exist() -> None:
    """No page is orphaned and no nav entry points nowhere (mkdocs --strict agrees)."""
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=_MkdocsLoader)  # noqa: S506
    assert config["strict"] is True
    nav = list(_nav_pages(config["nav"]))
    pages = {
        str(path.relative_to(DOCS))
        for path in DOCS.rglob("*.md")
        if path.relative_to(DOCS).parts[0] != "hooks"
    }
    assert sorted(set(nav) - pages - GENERATED) == [], "nav entries without a page"
    assert sorted(pages - set(nav)) == [], "pages missing from the nav"
    assert set(nav) >= GENERATED
    assert "settings.md" in nav
    assert "architecture.md" in nav


def test_mermaid_diagrams_are_rendered() -> None:
    """mkdocs renders ```mermaid fences as diagrams (docs/architecture.md has one)."""
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=_MkdocsLoader)  # noqa: S506
    fences = [
        extension["pymdownx.superfences"]["custom_fences"]
        for extension in config["markdown_extensions"]
        if isinstance(extension, dict) and "pymdownx.superfences" in extension
    ]
    assert fences and fences[0][0]["name"] == "mermaid"
    assert "```mermaid" in (DOCS / "architecture.md").read_text()


def test_readme_links_into_docs_resolve() -> None:
    """Every docs/ link in the README points at a file that exists."""
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\((docs/[^)#\s]+)", readme)
    assert links
    for link in links:
        assert (ROOT / link).exists(), link


#: A repository path in backticks or a link: ``src/keyturn/x.py``, ``tests/unit/y.py``.
_REPO_PATH = re.compile(r"(?<![\w/.])((?:src|tests|benchmarks|examples)/[\w/.-]+\.py)")
#: A dotted module name in backticks: ``keyturn.tokens.bearer``.
_MODULE = re.compile(r"`(keyturn(?:\.[A-Za-z_][A-Za-z0-9_]*)+)")


def _documents() -> list[Path]:
    return [ROOT / "README.md", ROOT / "examples" / "README.md", *DOCS.rglob("*.md")]


def test_every_code_and_test_path_the_docs_name_exists() -> None:
    """A file the docs point at (a module, the test that guards a fix) exists, so
    moving code cannot leave the docs pointing nowhere."""
    missing = [
        f"{document.relative_to(ROOT)}: {path}"
        for document in _documents()
        for path in _REPO_PATH.findall(document.read_text(encoding="utf-8"))
        if not (ROOT / path).exists() and not (document.parent / path).exists()
    ]
    assert missing == []


def _resolves(name: str) -> bool:
    """Whether ``name`` is a module of keyturn, or an attribute of one."""
    parts = name.split(".")
    for cut in range(len(parts), 1, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


#: File names in backticks that look like dotted names (``keyturn.db``, ``keyturn.toml``).
_FILE_SUFFIXES = {"db", "toml", "css", "kek", "key", "log", "jsonl", "json", "pem", "crt"}


def test_every_module_the_docs_name_imports() -> None:
    """A ``keyturn.x.y`` the docs name is a module, or an attribute of one (the
    logger names ``keyturn.audit`` and ``keyturn.fanout`` are modules too)."""
    unknown = sorted(
        f"{document.relative_to(ROOT)}: {name}"
        for document in _documents()
        for name in set(_MODULE.findall(document.read_text(encoding="utf-8")))
        if not set(name.split(".")[1:]) & _FILE_SUFFIXES and not _resolves(name)
    )
    assert unknown == []


#: ``--8<-- "path"`` or ``--8<-- "path:section"``: pymdownx.snippets includes a file.
_SNIPPET = re.compile(r'^--8<-- "([^":]+)(?::(\w+))?"$', re.MULTILINE)


def test_the_oidc_guide_shows_the_sso_examples_the_tests_run() -> None:
    """The guide's relying parties are included from examples/sso (which
    tests/examples/test_sso_*.py and tests/browser/test_oidc_client_ts.py run), not
    copied into the page, and every included file and section exists."""
    config = yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=_MkdocsLoader)  # noqa: S506
    snippets = [
        extension["pymdownx.snippets"]
        for extension in config["markdown_extensions"]
        if isinstance(extension, dict) and "pymdownx.snippets" in extension
    ]
    assert snippets == [{"base_path": ["."], "check_paths": True}]
    guide = (DOCS / "guides" / "oidc.md").read_text()
    included = _SNIPPET.findall(guide)
    assert {path for path, _ in included} == {
        "examples/sso/flask_app.py",
        "examples/sso/django_app/settings.py",
        "examples/sso/django_app/urls.py",
        "examples/sso/django_app/views.py",
        "examples/sso/spa/app.js",
    }
    for path, section in included:
        text = (ROOT / path).read_text()
        if section:
            assert f"# --8<-- [start:{section}]" in text and f"# --8<-- [end:{section}]" in text
    assert "oauth.register(" not in guide and "OIDC_RP_CLIENT_ID" not in guide  # no copies
