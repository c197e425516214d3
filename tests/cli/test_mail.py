"""``keyturn mail test ADDRESS`` through a real SMTP server (aiosmtpd) and the folder."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.support import Run
from tests.unit.mail.smtp_support import StartServer, free_port, smtp_server

__all__ = ["smtp_server"]


def test_mail_test_sends_through_the_smtp_server(run: Run, smtp_server: StartServer) -> None:
    """The test message reaches the SMTP server, From --mail-from, as text + HTML."""
    server = smtp_server()
    result = run(
        "mail", "test", "ops@example.com", "--smtp-url", server.url(),
        "--mail-from", "Keyturn <auth@example.com>",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert f"127.0.0.1:{server.port}" in result.stdout
    [message] = server.recorder.messages
    assert message["To"] == "ops@example.com"
    assert message["From"] == "Keyturn <auth@example.com>"
    assert [part.get_content_type() for part in message.walk()][1:] == [
        "text/plain",
        "text/html",
    ]


def test_mail_test_without_smtp_writes_a_private_eml_file(run: Run, tmp_path: Path) -> None:
    """With no --smtp-url the message is an .eml file in ./keyturn-outbox (0700/0600)."""
    result = run("mail", "test", "ops@example.com")
    assert result.exit_code == 0, result.stderr
    folder = tmp_path / "keyturn-outbox"
    [written] = list(folder.glob("*.eml"))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    assert b"To: ops@example.com" in written.read_bytes()


def test_mail_test_reports_an_unreachable_server_with_its_code(run: Run) -> None:
    """A refused connection is exit 1 and one line naming the error code, no password."""
    url = f"smtp://user:hunter2@127.0.0.1:{free_port()}"
    result = run("mail", "test", "ops@example.com", "--smtp-url", url, "--smtp-timeout", "2")
    assert result.exit_code == 1
    assert "delivery_retryable" in result.stderr and "hunter2" not in result.stderr
