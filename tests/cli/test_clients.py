"""``keyturn client add``: public and confidential clients, secrets stored hashed."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
from tests.support import Run

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


def _add(run: Run, database_url: str, *args: str) -> dict[str, object]:
    result = run("client", "add", *args, "--json", "--database-url", database_url)
    assert result.exit_code == 0, result.stderr
    body: dict[str, object] = json.loads(result.stdout)
    return body


def _show(run: Run, database_url: str, client_id: str) -> dict[str, object]:
    result = run("client", "show", client_id, "--json", "--database-url", database_url)
    assert result.exit_code == 0, result.stderr
    body: dict[str, object] = json.loads(result.stdout)
    return body


def test_add_with_every_spec_option_then_show(run: Run, database_url: str) -> None:
    """Every SPEC "Clients" option of client add is stored and shown by client show,
    never with the secret (#12)."""
    created = _add(
        run,
        database_url,
        "notes-web",
        "--confidential",
        "--first-party",
        "--redirect-uri",
        "https://notes.example/cb",
        "--redirect-uri",
        "http://127.0.0.1/cb",
        "--post-logout-redirect-uri",
        "https://notes.example/bye",
        "--grant",
        "authorization_code",
        "--grant",
        "client_credentials",
        "--scope",
        "notes:read",
        "--backchannel-logout-uri",
        "https://notes.example/bc",
        "--id-token-alg",
        "EdDSA",
    )
    assert isinstance(created["client_secret"], str)
    shown = _show(run, database_url, str(created["client_id"]))
    assert shown == {
        "client_id": created["client_id"],
        "name": "notes-web",
        "type": "confidential",
        "first_party": True,
        "redirect_uris": ["https://notes.example/cb", "http://127.0.0.1/cb"],
        "post_logout_redirect_uris": ["https://notes.example/bye"],
        "grant_types": ["authorization_code", "client_credentials"],
        "allowed_scopes": ["openid", "profile", "email", "offline_access", "notes:read"],
        "backchannel_logout_uri": "https://notes.example/bc",
        "id_token_alg": "EdDSA",
        "created_at": shown["created_at"],
    }
    plain = run("client", "show", str(created["client_id"]), "--database-url", database_url)
    assert plain.exit_code == 0 and "https://notes.example/cb" in plain.stdout
    assert str(created["client_secret"]) not in plain.stdout


def test_defaults_are_public_code_and_refresh(run: Run, database_url: str) -> None:
    """Without options: public, not first-party, grants authorization_code and
    refresh_token (SPEC "Clients" defaults); --public says the same explicitly."""
    for args in ((), ("--public",)):
        created = _add(run, database_url, "spa", "--redirect-uri", "https://spa.example/cb", *args)
        assert created["client_secret"] is None
        shown = _show(run, database_url, str(created["client_id"]))
        assert shown["type"] == "public" and shown["first_party"] is False
        assert shown["grant_types"] == ["authorization_code", "refresh_token"]


def test_list_shows_every_client_oldest_first(run: Run, database_url: str) -> None:
    """client list prints one line per client (id, type, grants, name), and
    --json the same records as show --json."""
    first = _add(run, database_url, "first", "--redirect-uri", "https://a.example/cb")
    second = _add(run, database_url, "second", "--confidential", "--grant", "client_credentials")
    listed = run("client", "list", "--database-url", database_url)
    assert listed.exit_code == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(str(first["client_id"])) and "public" in lines[0]
    assert "confidential" in lines[1] and "client_credentials" in lines[1]
    as_json = run("client", "list", "--json", "--database-url", database_url)
    ids = [each["client_id"] for each in json.loads(as_json.stdout)]
    assert ids == [first["client_id"], second["client_id"]]


def test_remove_deletes_and_unknown_ids_fail_in_one_line(run: Run, database_url: str) -> None:
    """client remove deletes the client (show then fails); an unknown id is one
    line on stderr and a non-zero exit, for show and remove alike."""
    created = _add(run, database_url, "gone")
    client_id = str(created["client_id"])
    removed = run("client", "remove", client_id, "--database-url", database_url)
    assert removed.exit_code == 0, removed.stderr
    for command in ("show", "remove"):
        result = run("client", command, client_id, "--database-url", database_url)
        assert result.exit_code == 1
        assert result.stderr.count("\n") == 1 and "no client has id" in result.stderr


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (("--redirect-uri", "http://app.example/cb"), "must use https"),
        (("--redirect-uri", "https://app.example/cb#x"), "fragment"),
        (("--redirect-uri", "https://*.example/cb"), "wildcard"),
        (("--grant", "client_credentials"), "needs a confidential client"),
        (("--backchannel-logout-uri", "ftp://x.example/"), "back-channel logout URI"),
    ],
)
def test_invalid_registrations_are_one_line_errors(
    run: Run, database_url: str, args: tuple[str, ...], reason: str
) -> None:
    """Bad redirect URIs, client_credentials for a public client and a bad
    back-channel URI fail with one line naming the rule; nothing is stored."""
    result = run("client", "add", "bad", *args, "--database-url", database_url)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and reason in result.stderr
    assert "Traceback" not in result.stderr
    listed = run("client", "list", "--json", "--database-url", database_url)
    assert json.loads(listed.stdout) == []


def test_unknown_grant_or_alg_is_a_usage_error(run: Run, database_url: str) -> None:
    """--grant and --id-token-alg accept only the SPEC values (usage error, exit 2)."""
    for args in (("--grant", "implicit"), ("--id-token-alg", "HS256")):
        result = run("client", "add", "bad", *args, "--database-url", database_url)
        assert result.exit_code == 2 and result.stderr.count("\n") == 1
