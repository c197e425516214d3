"""The audit log: JSON lines, no secrets, injection-safe (SEC-77..79)."""

from __future__ import annotations

import json
import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from keyturn.audit import AUDIT_LOGGER, AuditLog, email_fingerprint
from keyturn.clock import FrozenClock
from keyturn.settings import Settings


@pytest.fixture
def audit() -> Iterator[AuditLog]:
    """An audit log without a file, on a frozen clock."""
    log = AuditLog(Settings(), FrozenClock(1_800_000_000.25))
    yield log
    log.close()


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The messages written to the audit logger."""
    return [record.getMessage() for record in caplog.records if record.name == AUDIT_LOGGER]


def test_events_are_single_json_lines_with_time_event_and_outcome(
    audit: AuditLog, caplog: pytest.LogCaptureFixture
) -> None:
    """Each event is one JSON object with ts (UTC), event, outcome and the given fields."""
    with caplog.at_level(logging.INFO, logger=AUDIT_LOGGER):
        audit.record("sign_in", user_id="u1", ip="192.0.2.1", user_agent="UA", session="h1")
    [line] = lines(caplog)
    assert "\n" not in line
    event = json.loads(line)
    assert event == {
        "ts": "2027-01-15T08:00:00.250Z",
        "event": "sign_in",
        "outcome": "ok",
        "user_id": "u1",
        "ip": "192.0.2.1",
        "user_agent": "UA",
        "session": "h1",
    }


def test_secret_looking_fields_are_dropped_by_name(
    audit: AuditLog, caplog: pytest.LogCaptureFixture
) -> None:
    """Passwords, secrets, tokens, CSRF tokens and cookies never reach the log, only their names."""
    leaked = {
        "password": "hunter2-hunter2",
        "new_password": "correct-horse-battery",
        "secret": "s3cr3t-session-id",
        "session_secret": "another-secret",
        "access_token": "eyJhbGciOi.payload.sig",
        "csrf_token": "csrf-value",
        "cookie": "__Host-keyturn_session=abc",
        "Authorization": "Bearer xyz",
    }
    with caplog.at_level(logging.INFO, logger=AUDIT_LOGGER):
        audit.record("sign_in", outcome="failed", **leaked)
    [line] = lines(caplog)
    for value in leaked.values():
        assert value not in line
    assert json.loads(line)["redacted"] == sorted(leaked)


def test_crlf_and_ansi_in_fields_stay_on_one_line(
    audit: AuditLog, caplog: pytest.LogCaptureFixture
) -> None:
    """CR/LF, ANSI escapes and Unicode line separators cannot forge a second log line."""
    forged = 'a@x.io\r\n{"event":"sign_in","outcome":"ok","user_id":"admin"}'
    with caplog.at_level(logging.INFO, logger=AUDIT_LOGGER):
        audit.record(
            "sign_in",
            outcome="failed",
            email=forged,
            user_agent="\x1b[31mred\x1b[0m\u2028next\x00",
            kid="\x1b]0;title\x07k1",
        )
    [line] = lines(caplog)
    assert "\n" not in line and "\r" not in line and "\x1b" not in line
    assert "\u2028" not in line
    event = json.loads(line)
    assert event["event"] == "sign_in" and event["outcome"] == "failed"
    assert event["user_agent"] == "red next "
    assert event["kid"] == "k1"
    assert "\n" not in event["email"]


def test_long_values_are_cut(audit: AuditLog, caplog: pytest.LogCaptureFixture) -> None:
    """A huge user agent cannot blow up the log."""
    with caplog.at_level(logging.INFO, logger=AUDIT_LOGGER):
        audit.record("sign_in", user_agent="x" * 100_000)
    [line] = lines(caplog)
    assert len(line) < 1_000


def test_email_fingerprint_is_short_and_case_insensitive() -> None:
    """The failed-sign-in pseudonym ignores case and reveals no address."""
    assert email_fingerprint("Alice@Example.org") == email_fingerprint("alice@example.org")
    assert len(email_fingerprint("alice@example.org")) == 16
    assert "alice" not in email_fingerprint("alice@example.org")


def test_file_gets_the_lines_and_mode_0600(tmp_path: Path) -> None:
    """With audit_log_file set, lines are appended to a file only its owner can read."""
    path = tmp_path / "audit.jsonl"
    first = AuditLog(Settings(audit_log_file=path), FrozenClock())
    second = AuditLog(Settings(audit_log_file=path), FrozenClock())
    try:
        first.record("user_disabled", user_id="u1")
        second.record("user_enabled", user_id="u1")
    finally:
        first.close()
        second.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    written = path.read_text().splitlines()
    assert [json.loads(line)["event"] for line in written] == ["user_disabled", "user_enabled"]


def test_file_handler_is_installed_once_and_released(tmp_path: Path) -> None:
    """Two audit logs on one file share one handler, removed when the last one closes."""
    path = tmp_path / "audit.jsonl"
    logger = logging.getLogger(AUDIT_LOGGER)
    before = len(logger.handlers)
    first = AuditLog(Settings(audit_log_file=path), FrozenClock())
    second = AuditLog(Settings(audit_log_file=path), FrozenClock())
    assert len(logger.handlers) == before + 1
    first.close()
    assert len(logger.handlers) == before + 1
    second.close()
    assert len(logger.handlers) == before


def test_an_existing_world_readable_file_is_tightened(tmp_path: Path) -> None:
    """An audit file that already exists with a loose mode is made 0600."""
    path = tmp_path / "audit.jsonl"
    path.write_text("")
    path.chmod(0o644)
    log = AuditLog(Settings(audit_log_file=path), FrozenClock())
    log.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
