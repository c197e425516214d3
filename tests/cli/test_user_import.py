"""``keyturn user import FILE``: accounts with bcrypt, Django PBKDF2 or argon2 hashes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from pathlib import Path

import bcrypt
from tests.cli.test_users import _run_in_terminal
from tests.support import Run

from keyturn.runtime import Keyturn
from keyturn.settings import Settings

PASSWORD = "correct horse battery staple"


def bcrypt_hash(password: str) -> str:
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()


def django_hash(password: str, salt: str = "Xy7fQ2pLm9Zt") -> str:
    """Django's format: pbkdf2_sha256$iterations$salt$base64(pbkdf2_hmac)."""
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 1000)
    return f"pbkdf2_sha256$1000${salt}${base64.b64encode(digest).decode()}"


def write_lines(path: Path, records: list[object]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def sign_in(database_url: str, email: str, password: str) -> str:
    """Sign in through the library on the imported database; the stored hash afterwards."""

    async def go() -> str:
        async with Keyturn(Settings(database_url=database_url)) as keyturn:
            user = await keyturn.accounts.authenticate(email, password)
            stored = await keyturn.storage.users.get(user.id)
            assert stored is not None
            return stored.password_hash

    return asyncio.run(go())


def test_import_then_sign_in_upgrades_to_argon2id(
    run: Run, database_url: str, tmp_path: Path
) -> None:
    """Imported bcrypt and Django users can sign in with their old passwords; hashes upgrade."""
    hashes = {
        "php@example.com": bcrypt_hash(PASSWORD),
        "django@example.com": django_hash(PASSWORD),
    }
    path = write_lines(
        tmp_path / "users.jsonl",
        [
            {"email": "PHP@example.com", "password_hash": hashes["php@example.com"]},
            "",
            {
                "email": "django@example.com",
                "password_hash": hashes["django@example.com"],
                "roles": ["admin", "ops"],
            },
        ],
    )
    result = run("user", "import", str(path), "--database-url", database_url)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == (
        "imported 2 account(s) (bcrypt: 1, pbkdf2_sha256: 1), skipped 0 duplicate(s)"
    )
    for stored in hashes.values():
        assert stored not in result.stdout + result.stderr
    listed = run("user", "list", "--database-url", database_url).stdout
    assert "PHP@example.com" in listed and "admin,ops" in listed
    for email in hashes:
        upgraded = sign_in(database_url, email, PASSWORD)
        assert upgraded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_duplicates_are_skipped_with_a_message(run: Run, database_url: str, tmp_path: Path) -> None:
    """An existing account and a repeated address are skipped, named, and counted."""
    run(
        "user",
        "add",
        "taken@example.com",
        "--password-stdin",
        "--database-url",
        database_url,
        stdin=PASSWORD,
    )
    path = write_lines(
        tmp_path / "users.jsonl",
        [
            {"email": "Taken@Example.com", "password_hash": bcrypt_hash("another password 1")},
            {"email": "new@example.com", "password_hash": bcrypt_hash(PASSWORD)},
            {"email": "NEW@example.com", "password_hash": django_hash(PASSWORD)},
        ],
    )
    result = run("user", "import", str(path), "--database-url", database_url)
    assert result.exit_code == 0, result.stderr
    assert "line 1: Taken@example.com already has an account, skipped" in result.stderr
    assert "line 3: NEW@example.com appears earlier in the file, skipped" in result.stderr
    assert "imported 1 account(s) (bcrypt: 1), skipped 2 duplicate(s)" in result.stdout
    # The existing account keeps its own password.
    assert sign_in(database_url, "taken@example.com", PASSWORD).startswith("$argon2id$")


def test_invalid_lines_import_nothing(run: Run, database_url: str, tmp_path: Path) -> None:
    """Each bad line is named with its reason; nothing is stored; hashes are not echoed."""
    unknown_hash = "md5$seasalt$3f86d0d3d465b7b458c231bf3555c0e3"
    path = write_lines(
        tmp_path / "users.jsonl",
        [
            {"email": "ok@example.com", "password_hash": bcrypt_hash(PASSWORD)},
            {"email": "not-an-address", "password_hash": bcrypt_hash(PASSWORD)},
            {"email": "md5@example.com", "password_hash": unknown_hash},
            "{not json",
            {"email": "roles@example.com", "password_hash": bcrypt_hash(PASSWORD), "roles": "x"},
            {"email": "extra@example.com", "password_hash": bcrypt_hash(PASSWORD), "pw": "x"},
            {"email": "trunc@example.com", "password_hash": "$2b$12$short"},
        ],
    )
    result = run("user", "import", str(path), "--database-url", database_url)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("keyturn: line 2: invalid e-mail address")
    assert lines[1].startswith("keyturn: line 3: password_hash: unsupported hash format 'md5'")
    assert lines[2] == "keyturn: line 4: not a JSON object"
    assert lines[3].startswith('keyturn: line 5: "roles" must be a list')
    assert lines[4].startswith("keyturn: line 6: unknown key 'pw'")
    assert lines[5] == "keyturn: line 7: password_hash: malformed bcrypt hash"
    assert lines[6] == f"keyturn: error: {path}: 6 invalid line(s); nothing imported"
    assert unknown_hash not in result.stderr and "$2b$12$short" not in result.stderr
    assert "$2b$04$" not in result.stderr  # no bcrypt hash from the file
    assert "ok@example.com" not in run("user", "list", "--database-url", database_url).stdout


def test_import_reads_standard_input(run: Run, database_url: str) -> None:
    """FILE may be '-' so an export can be piped in."""
    line = json.dumps({"email": "pipe@example.com", "password_hash": django_hash(PASSWORD)})
    result = run("user", "import", "-", "--database-url", database_url, stdin=line + "\n")
    assert result.exit_code == 0, result.stderr
    assert "imported 1 account(s)" in result.stdout


def test_a_file_that_is_not_utf8_imports_nothing(
    run: Run, database_url: str, tmp_path: Path
) -> None:
    """Binary or Latin-1 input is refused in one line, not half-imported."""
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"email": "caf\xe9@example.com", "password_hash": "x"}\n')
    result = run("user", "import", str(path), "--database-url", database_url)
    assert result.exit_code == 1
    assert result.stderr == f"keyturn: error: {path}: not UTF-8 text; nothing imported\n"


def test_missing_file_is_one_line_exit_2(run: Run, database_url: str) -> None:
    """A FILE that does not exist is a usage error, in one line."""
    result = run("user", "import", "nope.jsonl", "--database-url", database_url)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1


def test_large_file_shows_progress_on_a_terminal(
    tmp_path: Path, run: Run, database_url: str
) -> None:
    """On a terminal a big import draws a Rich progress bar, then the summary line."""
    stored = bcrypt_hash(PASSWORD)
    path = write_lines(
        tmp_path / "many.jsonl",
        [{"email": f"user{i}@example.com", "password_hash": stored} for i in range(250)],
    )
    code, output = _run_in_terminal(
        ["user", "import", str(path), "--database-url", database_url], [], tmp_path
    )
    assert code == 0, output
    assert "importing" in output and "/250" in output
    assert "imported 250 account(s) (bcrypt: 250), skipped 0 duplicate(s)" in output
    assert stored not in output
    assert "user249@example.com" in run("user", "list", "--database-url", database_url).stdout
