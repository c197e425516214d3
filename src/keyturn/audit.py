"""The audit log: one JSON object per line for every security-relevant event.

Lines go to the ``keyturn.audit`` logger (so a host application's logging sees
them) and, when ``settings.audit_log_file`` is set, are appended to that file,
created with mode 0600. Each line holds ``ts`` (ISO 8601 UTC, milliseconds),
``event``, ``outcome`` and whichever fields apply: ``user_id``, ``email``,
``email_hash``, ``ip``, ``user_agent``, ``session`` (the public handle of a
sign-in, never its secret ID), ``reason``, plus event-specific extras.

Secrets stay out by construction (SEC-78): no parameter takes a secret, and any
extra field whose name looks like a secret (password, secret, token, csrf,
cookie, authorization, credential) is dropped and only its *name* is listed
under ``redacted``, so a careless caller shows up in review instead of leaking.

Injection-safe (SEC-79): ANSI escape sequences are removed, every other control
character (CR and LF included) becomes a space, long strings are cut, and the
line is JSON with ``ensure_ascii`` (so Unicode line separators are escaped too).
One event is always exactly one line.

E-mail addresses: events about a known account carry the account's stored
address. A *failed* sign-in logs ``email_hash`` instead of the typed text: people
type passwords into the e-mail field, and the typed text of a failed attempt is
untrusted input. ``email_hash`` is the first 16 hex digits of an HMAC-SHA256,
keyed per installation, of the address's lookup key
(:func:`keyturn.accounts.emails.email_lookup_key`, so every spelling of one address
gets one hash). A keyed hash, not a bare SHA-256, so that whoever reads the log
cannot test guesses (of addresses, or of a password typed into the e-mail field)
against it offline (#10 item 10e). An operator still finds every failure for an
address they know with :meth:`AuditLog.email_hash` on the same installation.

The key is derived (HKDF-SHA256) from the installation's key-encryption key
(:meth:`keyturn.keys.encryption.KeyEncryptor.derive_key`): ``--key-encryption-key``
when set, else the ``.kek`` file beside a SQLite database, so no new secret is
kept anywhere. Until :class:`~keyturn.runtime.Keyturn` has resolved that key (and
for an in-memory database, whose key-encryption key lives as long as the
process), the key is random per process.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
from pathlib import Path
from typing import Any, Final

from keyturn.accounts.emails import email_lookup_key
from keyturn.clock import Clock, to_datetime
from keyturn.settings import Settings

__all__ = ["AUDIT_LOGGER", "EMAIL_HASH_KEY_PURPOSE", "EVENTS", "AuditLog", "email_fingerprint"]

AUDIT_LOGGER: Final = "keyturn.audit"
#: What the ``email_hash`` key is derived for from the key-encryption key.
EMAIL_HASH_KEY_PURPOSE: Final = "audit email_hash v1"

#: The events keyturn records (others may be added by later features).
EVENTS: Final = frozenset(
    {
        "sign_in",
        "sign_out",
        "session_revoked",
        "signed_out_everywhere",
        "password_changed",
        "reauthenticated",
        "session_evicted",
        "user_disabled",
        "user_enabled",
        "registered",
        "token_refreshed",
        "refresh_reuse_detected",
        "token_revoked",
        "client_added",
        "client_removed",
        "client_token_issued",
    }
)

_SECRET_NAME = re.compile(r"pass|secret|token|csrf|cookie|authoriz|credential|session_id", re.I)
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MAX_STRING = 512
_MAX_ITEMS = 50


def email_fingerprint(email: str, key: bytes) -> str:
    """A short pseudonym of an address for logs: 16 hex digits of the HMAC-SHA256
    under ``key`` of its lookup key, so the same for every spelling of one address
    and for one key, and useless to anyone without the key."""
    message = email_lookup_key(email).encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:16]


def _clean_string(value: str) -> str:
    value = _ANSI.sub("", value)
    value = _CONTROL.sub(" ", value)
    if len(value) > _MAX_STRING:
        value = value[:_MAX_STRING] + "…"
    return value


def _clean(value: object) -> object:
    """A JSON-safe, injection-safe copy of a field value."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return _clean_string(value)
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else list(value)
        return [_clean(item) for item in items[:_MAX_ITEMS]]
    return _clean_string(str(value))


class _PrivateFileHandler(logging.FileHandler):
    """Appends to a file created with mode 0600 (tightened to 0600 if it exists)."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with contextlib.suppress(OSError):  # not our file: keep its mode, still append
            os.fchmod(fd, 0o600)
        return os.fdopen(fd, "a", encoding="utf-8")


_handlers_lock = threading.Lock()
#: One handler per audit file for the whole process, however many AuditLogs
#: (Keyturn instances) write to it; counted so the last one closes it.
_file_handlers: dict[str, tuple[_PrivateFileHandler, int]] = {}


def _acquire_file_handler(path: Path) -> str:
    name = str(path.expanduser().resolve())
    with _handlers_lock:
        entry = _file_handlers.get(name)
        if entry is None:
            handler = _PrivateFileHandler(name, encoding="utf-8")
            handler.setFormatter(logging.Formatter("%(message)s"))
            handler.setLevel(logging.INFO)
            logging.getLogger(AUDIT_LOGGER).addHandler(handler)
            _file_handlers[name] = (handler, 1)
        else:
            _file_handlers[name] = (entry[0], entry[1] + 1)
    return name


def _release_file_handler(name: str) -> None:
    with _handlers_lock:
        entry = _file_handlers.get(name)
        if entry is None:
            return
        handler, users = entry
        if users > 1:
            _file_handlers[name] = (handler, users - 1)
            return
        del _file_handlers[name]
    logging.getLogger(AUDIT_LOGGER).removeHandler(handler)
    handler.close()


class AuditLog:
    """Writes audit events as JSON lines (see the module doc for the format).

    Call :meth:`close` when done to release the audit file.

    Args:
        settings: ``audit_log_file`` (optional) is where lines are also appended.
        clock: supplies ``ts``.
    """

    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.clock = clock
        self.logger = logging.getLogger(AUDIT_LOGGER)
        if self.logger.level == logging.NOTSET:
            self.logger.setLevel(logging.INFO)
        self._file: str | None = None
        self._email_key = secrets.token_bytes(32)
        if settings.audit_log_file is not None:
            self._file = _acquire_file_handler(settings.audit_log_file)

    def __repr__(self) -> str:
        return f"AuditLog(file={self._file!r})"

    def use_email_key(self, key: bytes) -> None:
        """Key ``email_hash`` with ``key`` (the installation's, see the module doc)
        from now on.

        Raises:
            ValueError: ``key`` is shorter than 32 bytes.
        """
        if len(key) < 32:
            raise ValueError("the email_hash key must be at least 32 bytes")
        self._email_key = key

    def email_hash(self, email: str) -> str:
        """The ``email_hash`` this log writes for ``email`` (see the module doc)."""
        return email_fingerprint(email, self._email_key)

    def record(
        self,
        event: str,
        *,
        outcome: str = "ok",
        user_id: str | None = None,
        email: str | None = None,
        ip: str | None = None,
        user_agent: str | None = None,
        session: str | None = None,
        reason: str | None = None,
        **extra: object,
    ) -> dict[str, object]:
        """Write one event and return the fields written (for tests and hooks).

        ``session`` is the public handle of a sign-in, never a session ID.
        Extra fields named like secrets are dropped (see the module doc);
        ``None`` fields are left out.
        """
        line: dict[str, object] = {
            "ts": to_datetime(self.clock.now()).isoformat(timespec="milliseconds"),
            "event": event,
            "outcome": outcome,
        }
        line["ts"] = str(line["ts"]).replace("+00:00", "Z")
        fields: dict[str, object] = {
            "user_id": user_id,
            "email": email,
            "ip": ip,
            "user_agent": user_agent,
            "session": session,
            "reason": reason,
        }
        redacted: list[str] = []
        for name, value in extra.items():
            if _SECRET_NAME.search(name) or name in line or name in fields:
                redacted.append(name)
                continue
            fields[name] = value
        for name, value in fields.items():
            if value is not None:
                line[name] = _clean(value)
        line["event"] = _clean(event)
        line["outcome"] = _clean(outcome)
        if redacted:
            line["redacted"] = [_clean_string(name) for name in sorted(redacted)]
        self.logger.info(json.dumps(line, ensure_ascii=True, separators=(",", ":")))
        return line

    def close(self) -> None:
        """Release the audit file (closed once no AuditLog uses it)."""
        if self._file is not None:
            _release_file_handler(self._file)
            self._file = None
