"""The README's FastAPI snippet is examples/quickstart/app.py, verbatim, and it works:
a session or a token reaches the protected route, nobody else does, and a cookie
POST to a host route needs the CSRF token."""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from types import ModuleType

import pytest
from tests.library.conftest import PASSWORD, Serve

ROOT = Path(__file__).resolve().parents[2]
SNIPPET = ROOT / "examples" / "quickstart" / "app.py"
SECTION = "## Use keyturn in your FastAPI app"


def readme_snippet() -> str:
    """The first python code block of the README's FastAPI section."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert SECTION in readme
    section = readme.split(SECTION, 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "no python block in the README's FastAPI section"
    return match.group(1)


def test_the_readme_snippet_is_the_example_file() -> None:
    """The README shows the file that this test runs, byte for byte."""
    assert readme_snippet() == SNIPPET.read_text(encoding="utf-8")


def test_the_snippet_is_at_most_ten_lines_of_code() -> None:
    """Issue #5: protect a route with a session or a token in at most 10 lines."""
    lines = [line for line in readme_snippet().splitlines() if line.strip()]
    assert len(lines) <= 10, lines


@pytest.fixture
def quickstart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """examples/quickstart/app.py imported fresh, its SQLite file in a temporary directory."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("KEYTURN_"):
            monkeypatch.delenv(name)
    spec = importlib.util.spec_from_file_location("quickstart_under_test", SNIPPET)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_snippet_protects_its_route_with_a_session_or_a_token(
    quickstart: ModuleType, serve: Serve, tmp_path: Path
) -> None:
    """register + login (cookie) -> 200; a password-grant token -> 200; anonymous
    -> 401; a cookie POST to a host route without the CSRF token -> 403."""
    app = quickstart.app

    @app.post("/hello")
    async def post_hello() -> dict[str, bool]:
        return {"posted": True}

    async with serve(app) as client:
        anonymous = await client.get("/hello")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == "Bearer"

        account = {"email": "ada@example.com", "password": PASSWORD}
        assert (await client.post("/auth/register", json=account)).status_code == 201
        login = await client.post("/auth/login", json=account)
        assert login.status_code == 200
        by_cookie = await client.get("/hello")
        assert by_cookie.status_code == 200
        assert by_cookie.json() == {"hello": "ada@example.com", "via": "session"}

        refused = await client.post("/hello")
        assert refused.status_code == 403
        assert refused.json()["error"] == "csrf_failed"
        csrf = {"X-CSRF-Token": login.json()["csrf_token"]}
        assert (await client.post("/hello", headers=csrf)).json() == {"posted": True}

        # A token without the password grant (off by default, #12): the session's own.
        grant = await client.post("/auth/token", headers=csrf)
        assert grant.status_code == 200
        client.cookies.clear()
        bearer = {"Authorization": f"Bearer {grant.json()['access_token']}"}
        by_token = await client.get("/hello", headers=bearer)
        assert by_token.status_code == 200
        assert by_token.json() == {"hello": "ada@example.com", "via": "token"}
    assert (tmp_path / "quickstart.db").exists()


def test_the_fastapi_guide_shows_the_same_file() -> None:
    """docs/guides/fastapi.md's ten lines are the tested file too."""
    guide = (ROOT / "docs" / "guides" / "fastapi.md").read_text(encoding="utf-8")
    assert "```python\n" + SNIPPET.read_text(encoding="utf-8") + "```" in guide
