"""``keyturn key list|rotate`` and ``keyturn token verify`` against a real SQLite file."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path
from typing import Any

from tests.support import Run

from keyturn.runtime import Keyturn
from keyturn.settings import Settings

ISSUER = "https://auth.example.com"


def issue(database_url: str, **settings: Any) -> str:
    """An access token signed by the database's current key, as the server would."""

    async def action() -> str:
        async with Keyturn(Settings(database_url=database_url, **settings)) as keyturn:
            token, _ = keyturn.token_issuer.issue("user-1", sid="sid-1", roles=["admin"])
            return token

    return asyncio.run(action())


def rows(output: str) -> list[list[str]]:
    """The data rows of a Rich table, split into cells."""
    cells = [
        [cell.strip() for cell in line.strip("│┃").split("│")]
        for line in output.splitlines()
        if line.startswith("│")
    ]
    return [row for row in cells if len(row) > 1]


def test_first_use_generates_a_key_and_a_private_kek_file(
    run: Run, database_url: str, tmp_path: Path
) -> None:
    """key list on a new database shows one active ES256 key and says the KEK file
    was generated, with mode 0600."""
    result = run("key", "list", "--database-url", database_url)
    assert result.exit_code == 0, result.stderr
    (row,) = rows(result.stdout)
    assert row[1:2] == ["ES256"] and row[-1] == "active"
    kek = tmp_path / "cli.db.kek"
    assert f"generated a key-encryption key in {kek}; back it up" in result.stderr
    assert stat.S_IMODE(kek.stat().st_mode) == 0o600
    again = run("key", "list", "--database-url", database_url)
    assert "generated" not in again.stderr


def test_rotate_prints_the_new_kid_and_retires_the_old_key(run: Run, database_url: str) -> None:
    """rotate --alg ES256 prints a kid that is then the active key; the old key verifies."""
    run("key", "list", "--database-url", database_url)
    result = run("key", "rotate", "--alg", "ES256", "--database-url", database_url)
    assert result.exit_code == 0, result.stderr
    new_kid = result.stdout.strip()
    listed = rows(run("key", "list", "--database-url", database_url).stdout)
    assert [(row[1], row[-1]) for row in listed] == [("ES256", "active"), ("ES256", "verifying")]
    assert listed[0][0] == new_kid


def test_rotate_keeps_one_active_key_per_algorithm(run: Run, database_url: str) -> None:
    """rotate --alg RS256 adds the ID-token key beside the access-token key (both
    active); rotating RS256 again retires only the older RS256 key."""
    run("key", "list", "--database-url", database_url)
    first = run("key", "rotate", "--alg", "RS256", "--database-url", database_url)
    assert first.exit_code == 0, first.stderr
    listed = rows(run("key", "list", "--database-url", database_url).stdout)
    assert sorted((row[1], row[-1]) for row in listed) == [("ES256", "active"), ("RS256", "active")]
    second = run("key", "rotate", "--alg", "RS256", "--database-url", database_url)
    listed = rows(run("key", "list", "--database-url", database_url).stdout)
    states = {row[0]: (row[1], row[-1]) for row in listed}
    assert states[second.stdout.strip()] == ("RS256", "active")
    assert states[first.stdout.strip()] == ("RS256", "verifying")
    assert sorted(states.values()) == [
        ("ES256", "active"),
        ("RS256", "active"),
        ("RS256", "verifying"),
    ]


def test_rotation_is_audited(run: Run, database_url: str, tmp_path: Path) -> None:
    """A rotation writes one key_rotated audit event naming the new and previous kid."""
    log = tmp_path / "audit.jsonl"
    result = run("key", "rotate", "--database-url", database_url, "--audit-log-file", str(log))
    assert result.exit_code == 0, result.stderr
    events = [json.loads(line) for line in log.read_text().splitlines()]
    rotated = [event for event in events if event["event"] == "key_rotated"]
    assert len(rotated) == 1
    assert rotated[0]["kid"] == result.stdout.strip()
    assert rotated[0]["previous_kid"] != rotated[0]["kid"]


def test_rotate_refuses_an_unknown_algorithm(run: Run, database_url: str) -> None:
    """--alg HS256 (or anything outside EdDSA|ES256|RS256) is a usage error."""
    result = run("key", "rotate", "--alg", "HS256", "--database-url", database_url)
    assert result.exit_code == 2
    assert result.stderr.startswith("keyturn: error:")


def test_token_verify_prints_the_claims(run: Run, database_url: str) -> None:
    """A genuine token verifies: exit 0 and its claims as JSON on stdout."""
    token = issue(database_url, issuer=ISSUER)
    result = run("token", "verify", token, "--database-url", database_url, "--issuer", ISSUER)
    assert result.exit_code == 0, result.stderr
    claims = json.loads(result.stdout)
    assert (claims["sub"], claims["sid"], claims["iss"]) == ("user-1", "sid-1", ISSUER)


def test_token_signed_before_a_rotation_still_verifies(run: Run, database_url: str) -> None:
    """After key rotate, a token from the previous key is still accepted."""
    token = issue(database_url, issuer=ISSUER)
    run("key", "rotate", "--database-url", database_url)
    result = run("token", "verify", token, "--database-url", database_url, "--issuer", ISSUER)
    assert result.exit_code == 0, result.stderr


def test_token_verify_says_why_a_token_is_rejected(run: Run, database_url: str) -> None:
    """Garbage or a token for another issuer: exit 1, one line with the reason."""
    garbage = run("token", "verify", "not-a-token", "--database-url", database_url)
    assert garbage.exit_code == 1
    assert garbage.stderr == "keyturn: error: token rejected: malformed\n"
    token = issue(database_url, issuer=ISSUER)
    other = run("token", "verify", token, "--database-url", database_url)
    assert other.exit_code == 1
    assert other.stderr == "keyturn: error: token rejected: invalid_claim:iss\n"


def test_wrong_kek_is_one_clear_line(run: Run, database_url: str, tmp_path: Path) -> None:
    """A KEK that cannot open the stored keys fails with one line, not a traceback."""
    run("key", "list", "--database-url", database_url)
    wrong = "A" * 43
    result = run("key", "list", "--database-url", database_url, "--key-encryption-key", wrong)
    assert result.exit_code == 2
    assert "wrong key-encryption key" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_token_verify_refuses_a_revoked_token(run: Run, database_url: str) -> None:
    """In strict mode a genuine but revoked token is rejected with reason revoked;
    in stateless mode it verifies, as the server would accept it."""
    token = issue(database_url, issuer=ISSUER)

    async def revoke() -> None:
        settings = Settings(database_url=database_url, issuer=ISSUER)
        async with Keyturn(settings) as keyturn:
            claims = keyturn.token_verifier.verify(token)
            await keyturn.revocations.revoke_jti(claims.jti, claims.exp)

    asyncio.run(revoke())
    strict = run("token", "verify", token, "--database-url", database_url, "--issuer", ISSUER)
    assert strict.exit_code == 1
    assert strict.stderr == "keyturn: error: token rejected: revoked\n"
    stateless = run(
        "token",
        "verify",
        token,
        "--database-url",
        database_url,
        "--issuer",
        ISSUER,
        "--revocation-mode",
        "stateless",
    )
    assert stateless.exit_code == 0, stateless.stderr
