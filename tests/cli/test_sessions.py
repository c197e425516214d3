"""``keyturn session list|revoke|revoke-all`` against a real SQLite database."""

from __future__ import annotations

import asyncio
import sqlite3

from tests.support import Run

from keyturn.runtime import Keyturn
from keyturn.settings import Settings

PASSWORD = "correct horse battery staple"


def sign_in(database_url: str, email: str, *, user_agent: str = "Firefox") -> str:
    """Sign in through the auth service (as the server would) and return the secret."""

    async def action() -> str:
        async with Keyturn(Settings(database_url=database_url)) as keyturn:
            _, issued = await keyturn.auth.sign_in(
                email, PASSWORD, ip="203.0.113.7", user_agent=user_agent
            )
            return issued.secret

    return asyncio.run(action())


def is_valid(database_url: str, secret: str) -> bool:
    """Whether a fresh instance (no cache) accepts the session."""

    async def action() -> bool:
        async with Keyturn(Settings(database_url=database_url)) as keyturn:
            try:
                await keyturn.sessions.validate(secret)
            except Exception:
                return False
            return True

    return asyncio.run(action())


def add_user(run: Run, database_url: str, email: str) -> None:
    result = run(
        "user", "add", email, "--password-stdin", "--database-url", database_url, stdin=PASSWORD
    )
    assert result.exit_code == 0, result.stderr


def test_list_shows_live_sign_ins_with_owner(run: Run, database_url: str) -> None:
    """session list shows each sign-in with its owner, IP and device, never the secret."""
    add_user(run, database_url, "a@example.com")
    secret = sign_in(database_url, "a@example.com")
    listed = run("session", "list", "--database-url", database_url)
    assert listed.exit_code == 0, listed.stderr
    assert "a@example.com" in listed.stdout
    assert "203.0.113.7" in listed.stdout
    assert "browser" in listed.stdout
    assert secret not in listed.stdout


def test_list_filters_by_user(run: Run, database_url: str) -> None:
    """--user limits the list to one account."""
    add_user(run, database_url, "a@example.com")
    add_user(run, database_url, "b@example.com")
    sign_in(database_url, "a@example.com")
    sign_in(database_url, "b@example.com")
    listed = run("session", "list", "--user", "B@example.com", "--database-url", database_url)
    assert "b@example.com" in listed.stdout
    assert "a@example.com" not in listed.stdout


def test_revoke_by_id_ends_that_sign_in(run: Run, database_url: str) -> None:
    """session revoke ID ends exactly that session."""
    add_user(run, database_url, "a@example.com")
    first = sign_in(database_url, "a@example.com", user_agent="first")
    second = sign_in(database_url, "a@example.com", user_agent="second")

    async def handle_of(secret: str) -> str:
        async with Keyturn(Settings(database_url=database_url)) as keyturn:
            return (await keyturn.sessions.validate(secret)).session.handle

    handle = asyncio.run(handle_of(first))
    result = run("session", "revoke", handle, "--database-url", database_url)
    assert result.exit_code == 0, result.stderr
    assert not is_valid(database_url, first)
    assert is_valid(database_url, second)


def test_an_old_id_starting_with_a_dash_is_revoked_after_double_dash(
    run: Run, database_url: str
) -> None:
    """New ids never start with '-'; one made before that is given after ``--``, as
    the command's help says."""
    add_user(run, database_url, "a@example.com")
    secret = sign_in(database_url, "a@example.com")
    with sqlite3.connect(database_url.removeprefix("sqlite+aiosqlite:///")) as db:
        db.execute("UPDATE sessions SET handle = '-oldStyleHandle1'")
    result = run("session", "revoke", "--database-url", database_url, "--", "-oldStyleHandle1")
    assert result.exit_code == 0, result.stderr
    assert not is_valid(database_url, secret)


def test_revoke_unknown_id_fails_in_one_line(run: Run, database_url: str) -> None:
    """An id that names no sign-in is an error, not a silent success."""
    result = run("session", "revoke", "AAAAAAAAAAAAAAAA", "--database-url", database_url)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1


def test_revoke_all_ends_every_sign_in_of_the_account(run: Run, database_url: str) -> None:
    """session revoke-all EMAIL signs the account out everywhere, others untouched."""
    add_user(run, database_url, "a@example.com")
    add_user(run, database_url, "b@example.com")
    a1 = sign_in(database_url, "a@example.com")
    a2 = sign_in(database_url, "a@example.com")
    b1 = sign_in(database_url, "b@example.com")
    result = run("session", "revoke-all", "a@example.com", "--database-url", database_url)
    assert result.exit_code == 0, result.stderr
    assert "ended 2 sign-ins" in result.stdout
    assert not is_valid(database_url, a1)
    assert not is_valid(database_url, a2)
    assert is_valid(database_url, b1)


def test_user_disable_ends_sessions(run: Run, database_url: str) -> None:
    """Disabling an account from the CLI ends its sessions at once."""
    add_user(run, database_url, "a@example.com")
    secret = sign_in(database_url, "a@example.com")
    assert run("user", "disable", "a@example.com", "--database-url", database_url).exit_code == 0
    assert not is_valid(database_url, secret)
