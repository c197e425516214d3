"""``keyturn user add|list|disable|enable`` and the CLI's error contract."""

from __future__ import annotations

import os
import pty
import select
import signal
import sys
import time
from pathlib import Path

from tests.support import Run

PASSWORD = "correct horse battery staple"


def test_add_then_list_shows_the_account(run: Run, database_url: str) -> None:
    """The README's promise: user add with --password-stdin, then user list shows it."""
    added = run(
        "user",
        "add",
        "a@example.com",
        "--password-stdin",
        "--database-url",
        database_url,
        stdin=PASSWORD + "\n",
    )
    assert added.exit_code == 0, added.stderr
    assert "created a@example.com" in added.stdout
    listed = run("user", "list", "--database-url", database_url)
    assert listed.exit_code == 0, listed.stderr
    assert "a@example.com" in listed.stdout
    assert "active" in listed.stdout


def test_roles_are_recorded(run: Run, database_url: str) -> None:
    """--role is repeatable and the roles show in the list."""
    run(
        "user",
        "add",
        "admin@example.com",
        "--password-stdin",
        "--role",
        "admin",
        "--role",
        "ops",
        "--database-url",
        database_url,
        stdin=PASSWORD,
    )
    listed = run("user", "list", "--database-url", database_url)
    assert "admin,ops" in listed.stdout


def test_settings_come_from_the_environment(
    run: Run, database_url: str, monkeypatch: object
) -> None:
    """Every command reads KEYTURN_* like serve does."""
    import pytest

    assert isinstance(monkeypatch, pytest.MonkeyPatch)
    monkeypatch.setenv("KEYTURN_DATABASE_URL", database_url)
    assert run("user", "add", "env@example.com", "--password-stdin", stdin=PASSWORD).exit_code == 0
    assert "env@example.com" in run("user", "list", "--database-url", database_url).stdout


def test_duplicate_email_is_one_line_and_nonzero(run: Run, database_url: str) -> None:
    """Adding A@x.io after a@x.io fails: addresses are unique case-insensitively."""
    run(
        "user",
        "add",
        "a@example.com",
        "--password-stdin",
        "--database-url",
        database_url,
        stdin=PASSWORD,
    )
    again = run(
        "user",
        "add",
        "A@Example.com",
        "--password-stdin",
        "--database-url",
        database_url,
        stdin=PASSWORD,
    )
    assert again.exit_code == 1
    assert again.stderr.count("\n") == 1
    assert again.stderr.startswith("keyturn: error:")
    assert "already exists" in again.stderr


def test_weak_password_is_refused(run: Run, database_url: str) -> None:
    """A short or common password is refused with the reason, in one line."""
    short = run(
        "user",
        "add",
        "b@example.com",
        "--password-stdin",
        "--database-url",
        database_url,
        stdin="short\n",
    )
    assert short.exit_code == 1
    assert short.stderr.count("\n") == 1
    assert "10" in short.stderr
    common = run(
        "user",
        "add",
        "b@example.com",
        "--password-stdin",
        "--database-url",
        database_url,
        stdin="password1234\n",
    )
    assert common.exit_code == 1
    assert "common" in common.stderr


def test_invalid_email_is_refused(run: Run, database_url: str) -> None:
    """An address that is not an e-mail address is refused."""
    result = run(
        "user",
        "add",
        "not-an-address",
        "--password-stdin",
        "--database-url",
        database_url,
        stdin=PASSWORD,
    )
    assert result.exit_code == 1
    assert result.stderr.startswith("keyturn: error:")


def test_disable_and_enable(run: Run, database_url: str) -> None:
    """disable marks the account disabled in the list; enable restores it."""
    run(
        "user",
        "add",
        "c@example.com",
        "--password-stdin",
        "--database-url",
        database_url,
        stdin=PASSWORD,
    )
    assert run("user", "disable", "C@example.com", "--database-url", database_url).exit_code == 0
    assert "disabled" in run("user", "list", "--database-url", database_url).stdout
    assert run("user", "enable", "c@example.com", "--database-url", database_url).exit_code == 0
    assert "active" in run("user", "list", "--database-url", database_url).stdout


def test_disable_unknown_user_fails(run: Run, database_url: str) -> None:
    """Disabling an address with no account says so in one line."""
    result = run("user", "disable", "nobody@example.com", "--database-url", database_url)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1


def test_invalid_setting_exits_2_without_traceback(run: Run) -> None:
    """A bad flag value is one line on stderr and exit code 2."""
    result = run("user", "list", "--access-token-ttl", "-5")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "--access-token-ttl" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_option_exits_2_in_one_line(run: Run) -> None:
    """Usage mistakes are one line too, not a usage dump."""
    result = run("user", "list", "--no-such-flag")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1


def test_empty_stdin_password_is_refused(run: Run, database_url: str) -> None:
    """--password-stdin with nothing on stdin does not create an account."""
    result = run(
        "user", "add", "d@example.com", "--password-stdin", "--database-url", database_url, stdin=""
    )
    assert result.exit_code == 1
    assert "d@example.com" not in run("user", "list", "--database-url", database_url).stdout


def _run_in_terminal(args: list[str], answers: list[str], cwd: Path) -> tuple[int, str]:
    """Run keyturn on a pseudo-terminal, typing each answer at its prompt."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.chdir(cwd)
        os.execv(
            sys.executable, [sys.executable, "-c", "from keyturn.cli import main; main()", *args]
        )
    output = b""
    deadline = time.monotonic() + 30
    pending = list(answers)
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 1024)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
            if pending and output.rstrip().endswith(b":"):
                time.sleep(0.3)  # let getpass switch echo off, as a person would type later
                os.write(fd, pending.pop(0).encode() + b"\n")
                output += b"\n"
    finally:
        if time.monotonic() >= deadline:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


def test_add_prompts_twice_on_a_terminal(tmp_path: Path, run: Run, database_url: str) -> None:
    """Without --password-stdin the password is asked twice, hidden."""
    code, output = _run_in_terminal(
        ["user", "add", "tty@example.com", "--database-url", database_url],
        [PASSWORD, PASSWORD],
        tmp_path,
    )
    assert code == 0, output
    assert "Password:" in output
    assert "Repeat for confirmation:" in output
    assert PASSWORD not in output  # not echoed
    assert "tty@example.com" in run("user", "list", "--database-url", database_url).stdout


def test_mismatched_confirmation_creates_nothing(
    tmp_path: Path, run: Run, database_url: str
) -> None:
    """Two different answers at the prompts do not create an account."""
    code, _ = _run_in_terminal(
        ["user", "add", "typo@example.com", "--database-url", database_url],
        [PASSWORD, PASSWORD + "x"],
        tmp_path,
    )
    assert code != 0
    assert "typo@example.com" not in run("user", "list", "--database-url", database_url).stdout
