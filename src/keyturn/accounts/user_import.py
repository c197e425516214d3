"""Reading accounts exported from another system (``keyturn user import``).

The input is JSON lines, one account per line::

    {"email": "a@example.com", "password_hash": "$2b$12$…", "roles": ["admin"]}

``roles`` is optional. Blank lines are skipped. Every line is checked before
anything is stored: a valid address, a hash keyturn can verify
(:func:`keyturn.accounts.legacy_hashes.hash_format`), roles as a list of short names, no
other keys, and no address twice in the file. Errors name the line and the
problem, never the hash.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from keyturn.accounts.emails import normalize_email
from keyturn.accounts.legacy_hashes import UnsupportedHash, hash_format
from keyturn.errors import InvalidEmail
from keyturn.stores.records import normalize_email_key

__all__ = ["ImportLineError", "ImportRecord", "parse_import_lines"]

_ROLE = re.compile(r"[^\s,]{1,64}")
_KEYS = frozenset({"email", "password_hash", "roles"})
#: Longer lines cannot be an account record; refusing them early bounds the work.
MAX_LINE_CHARS = 4096


@dataclass(frozen=True, slots=True)
class ImportRecord:
    """One account to import. ``repr`` leaves the hash out."""

    line: int
    email: str
    password_hash: str
    roles: tuple[str, ...]
    hash_format: str

    def __repr__(self) -> str:
        return (
            f"ImportRecord(line={self.line}, email={self.email!r}, roles={self.roles!r}, "
            f"hash_format={self.hash_format!r})"
        )


@dataclass(frozen=True, slots=True)
class ImportLineError:
    """Why one line cannot be imported."""

    line: int
    reason: str


def _parse_line(text: str, line: int) -> ImportRecord:
    if len(text) > MAX_LINE_CHARS:
        raise ValueError(f"longer than {MAX_LINE_CHARS} characters")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise ValueError("not a JSON object") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (expected email, password_hash, roles)")
    email, password_hash, roles = data.get("email"), data.get("password_hash"), data.get("roles")
    if not isinstance(email, str):
        raise ValueError('"email" must be a string')
    if not isinstance(password_hash, str):
        raise ValueError('"password_hash" must be a string')
    if roles is None:
        roles = []
    if not isinstance(roles, list) or not all(
        isinstance(role, str) and _ROLE.fullmatch(role) for role in roles
    ):
        raise ValueError('"roles" must be a list of names (1-64 characters, no spaces or commas)')
    try:
        normalized = normalize_email(email)
    except InvalidEmail as exc:
        raise ValueError(f"invalid e-mail address: {exc.detail}") from None
    try:
        scheme = hash_format(password_hash)
    except UnsupportedHash as exc:
        raise ValueError(f"password_hash: {exc}") from None
    return ImportRecord(line, normalized, password_hash, tuple(dict.fromkeys(roles)), scheme)


def parse_import_lines(
    lines: Iterable[str],
) -> tuple[list[ImportRecord], list[ImportLineError], list[ImportRecord]]:
    """Check every line: ``(records, errors, repeated)``.

    ``repeated`` are records whose address (case-insensitively) already appeared
    earlier in the input; they are not in ``records``. Line numbers start at 1.
    """
    records: list[ImportRecord] = []
    errors: list[ImportLineError] = []
    repeated: list[ImportRecord] = []
    seen: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text:
            continue
        try:
            record = _parse_line(text, number)
        except ValueError as exc:
            errors.append(ImportLineError(number, str(exc)))
            continue
        key = normalize_email_key(record.email)
        if key in seen:
            repeated.append(record)
            continue
        seen.add(key)
        records.append(record)
    return records, errors, repeated
