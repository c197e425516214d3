"""``keyturn client add``: public and confidential clients, secrets stored hashed."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

from tests.cli.conftest import Run

from keyturn.oauth.clients import hash_client_secret
from keyturn.runtime import Keyturn
from keyturn.settings import Settings


def test_confidential_client_json_prints_id_and_secret(run: Run, database_url: str) -> None:
    """--confidential --json prints {"client_id", "client_secret"} with a real secret."""
    result = run(
        "client", "add", "gateway", "--confidential", "--json", "--database-url", database_url
    )
    assert result.exit_code == 0, result.stderr
    body = json.loads(result.stdout)
    assert set(body) == {"client_id", "client_secret"}
    assert len(body["client_secret"]) >= 43


def test_public_client_has_no_secret(run: Run, database_url: str) -> None:
    """A public client gets an id and a null secret."""
    result = run("client", "add", "spa", "--json", "--database-url", database_url)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["client_secret"] is None


def test_secret_is_stored_only_as_a_hash(run: Run, database_url: str, tmp_path: Path) -> None:
    """The database holds the SHA-256 of the secret, never the secret itself."""
    body = json.loads(
        run(
            "client", "add", "gw", "--confidential", "--json", "--database-url", database_url
        ).stdout
    )
    with sqlite3.connect(tmp_path / "cli.db") as connection:
        rows = connection.execute("SELECT id, secret_hash FROM oauth_clients").fetchall()
    assert rows == [(body["client_id"], hash_client_secret(body["client_secret"]))]
    dump = (tmp_path / "cli.db").read_bytes()
    assert body["client_secret"].encode() not in dump


def test_the_printed_secret_authenticates(run: Run, database_url: str) -> None:
    """The id and secret printed by the CLI pass client authentication."""
    body = json.loads(
        run(
            "client", "add", "gw", "--confidential", "--json", "--database-url", database_url
        ).stdout
    )

    async def check() -> bool:
        async with Keyturn(Settings(database_url=database_url)) as keyturn:
            found = await keyturn.clients.authenticate_client(
                body["client_id"], body["client_secret"]
            )
            return found.confidential

    assert asyncio.run(check())


def test_plain_output_shows_the_secret_once(run: Run, database_url: str) -> None:
    """Without --json, the id and secret are printed as lines with a warning."""
    result = run("client", "add", "gw", "--confidential", "--database-url", database_url)
    assert result.exit_code == 0, result.stderr
    assert "client_id" in result.stdout and "client_secret" in result.stdout


def test_empty_name_is_one_line_error(run: Run, database_url: str) -> None:
    """A blank name fails with one line on stderr, no traceback."""
    result = run("client", "add", "  ", "--database-url", database_url)
    assert result.exit_code != 0
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_scope_adds_to_the_default_scopes(run: Run, database_url: str, tmp_path: Path) -> None:
    """--scope (repeatable; a space-separated value counts as several) is stored on
    top of the default scopes, which --default-scopes sets (#10 item 10c)."""
    result = run(
        "client",
        "add",
        "notes-app",
        "--scope",
        "notes:read",
        "--scope",
        "notes:write openid",
        "--json",
        "--database-url",
        database_url,
    )
    assert result.exit_code == 0, result.stderr
    plain = run(
        "client", "add", "plain", "--default-scopes", "openid,email", "--database-url", database_url
    )
    assert plain.exit_code == 0, plain.stderr
    assert "scopes        openid email" in plain.stdout
    with sqlite3.connect(tmp_path / "cli.db") as connection:
        rows = connection.execute(
            "SELECT name, allowed_scopes FROM oauth_clients ORDER BY created_at"
        ).fetchall()
    assert rows == [
        ("notes-app", "openid profile email offline_access notes:read notes:write"),
        ("plain", "openid email"),
    ]


def test_a_malformed_scope_is_one_line_error(run: Run, database_url: str) -> None:
    """A --scope RFC 6749 forbids fails with one line and registers nothing
    (#10 item 10c)."""
    result = run("client", "add", "x", "--scope", 'bad"scope', "--database-url", database_url)
    assert result.exit_code != 0
    assert result.stderr.count("\n") == 1 and "not an OAuth scope" in result.stderr

    async def count() -> int:
        async with Keyturn(Settings(database_url=database_url)) as keyturn:
            return len(await keyturn.clients.list())

    assert asyncio.run(count()) == 0
