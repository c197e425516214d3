"""The audit log: JSON lines, no secrets, injection-safe (SEC-77..79)."""

from __future__ import annotations

import hashlib
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
    key = b"k" * 32
    assert email_fingerprint("Alice@Example.org", key) == email_fingerprint(
        "alice@example.org", key
    )
    assert len(email_fingerprint("alice@example.org", key)) == 16
    assert "alice" not in email_fingerprint("alice@example.org", key)


def test_email_fingerprint_is_keyed() -> None:
    """#10 item 10e: the pseudonym is an HMAC: another key gives another hash, and the
    bare SHA-256 of the address (what anyone can compute) is not it."""
    first, second = b"a" * 32, b"b" * 32
    address = "alice@example.org"
    assert email_fingerprint(address, first) != email_fingerprint(address, second)
    assert email_fingerprint(address, first) != hashlib.sha256(address.encode()).hexdigest()[:16]
    # one hash for every spelling that finds one account (#10 item 1)
    assert email_fingerprint("alice@example\u3002org", first) == email_fingerprint(address, first)


async def failed_sign_in_hash(database: Path, kek: str | None = None) -> str:
    """Start a Keyturn on ``database`` (a fresh or existing SQLite file), fail one
    sign-in for alice, and return the email_hash its audit line carries."""
    from keyturn.accounts.passwords import PasswordHasher
    from keyturn.errors import InvalidCredentials
    from keyturn.runtime import Keyturn

    options: dict[str, object] = {"database_url": f"sqlite+aiosqlite:///{database}"}
    if kek is not None:
        options["key_encryption_key"] = kek
    settings = Settings(**options)  # type: ignore[arg-type]
    hasher = PasswordHasher(memory_kib=1024, time_cost=1, allow_weak_parameters=True)
    async with Keyturn(settings, hasher=hasher) as keyturn:
        with pytest.raises(InvalidCredentials):
            await keyturn.auth.sign_in(
                "Alice@Example.org", "wrong password!", ip="192.0.2.1", user_agent=None
            )
        return keyturn.audit.email_hash("alice@example.org")


async def test_email_hash_is_stable_per_installation_and_differs_between_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """#10 item 10e: one installation (its database and key-encryption key) gives an
    address the same email_hash across restarts; another installation a different one;
    and the log never holds the address's bare SHA-256."""
    from keyturn.keys.encryption import generate_kek

    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    first = await failed_sign_in_hash(tmp_path / "a.db")
    again = await failed_sign_in_hash(tmp_path / "a.db")
    other = await failed_sign_in_hash(tmp_path / "b.db")
    kek = generate_kek()
    configured = await failed_sign_in_hash(tmp_path / "c.db", kek)
    configured_again = await failed_sign_in_hash(tmp_path / "d.db", kek)
    assert first == again
    assert first != other
    assert configured == configured_again  # e.g. PostgreSQL: every instance has one KEK
    assert configured not in (first, other)
    logged = [json.loads(line)["email_hash"] for line in lines(caplog) if "email_hash" in line]
    assert logged == [first, again, other, configured, configured_again]
    text = "\n".join(lines(caplog))
    for typed in ("alice@example.org", "Alice@Example.org"):
        assert hashlib.sha256(typed.encode()).hexdigest()[:16] not in text


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
