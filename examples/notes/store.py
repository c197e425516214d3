"""The notes themselves: one SQLite table, reached through the stdlib ``sqlite3``.

Each call opens its own connection in a worker thread (``anyio.to_thread``), so
the event loop never waits on the disk and no connection is shared between
threads. That is plenty for an example; a real app would use its ORM of choice.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio

SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    owner      TEXT    NOT NULL,
    title      TEXT    NOT NULL,
    body       TEXT    NOT NULL DEFAULT '',
    created_at REAL    NOT NULL
);
CREATE INDEX IF NOT EXISTS notes_by_owner ON notes (owner, id);
"""


@dataclass(frozen=True)
class Note:
    """One note, owned by the keyturn user whose ``sub`` is ``owner``."""

    id: int
    owner: str
    title: str
    body: str
    created_at: float

    def to_dict(self) -> dict[str, Any]:
        """The note as the JSON API shows it."""
        return asdict(self)


class NoteStore:
    """Notes in the SQLite file ``path``; the file and table are created here."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._create()

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in a transaction: committed on success, always closed."""
        connection = sqlite3.connect(self.path, timeout=10)
        connection.row_factory = sqlite3.Row
        try:
            with connection:
                yield connection
        finally:
            connection.close()

    def _create(self) -> None:
        with self._connect() as db:
            db.executescript(SCHEMA)

    def _add(self, owner: str, title: str, body: str) -> Note:
        created_at = time.time()
        with self._connect() as db:
            cursor = db.execute(
                "INSERT INTO notes (owner, title, body, created_at) VALUES (?, ?, ?, ?)",
                (owner, title, body, created_at),
            )
            note_id = cursor.lastrowid
        assert note_id is not None
        return Note(note_id, owner, title, body, created_at)

    def _list(self, owner: str) -> list[Note]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT id, owner, title, body, created_at FROM notes "
                "WHERE owner = ? ORDER BY id DESC",
                (owner,),
            ).fetchall()
        return [Note(**dict(row)) for row in rows]

    def _delete(self, owner: str, note_id: int) -> bool:
        with self._connect() as db:
            cursor = db.execute("DELETE FROM notes WHERE owner = ? AND id = ?", (owner, note_id))
            return cursor.rowcount == 1

    async def add(self, owner: str, title: str, body: str) -> Note:
        """Store a new note for ``owner``."""
        return await anyio.to_thread.run_sync(self._add, owner, title, body)

    async def list(self, owner: str) -> list[Note]:
        """``owner``'s notes, newest first."""
        return await anyio.to_thread.run_sync(self._list, owner)

    async def delete(self, owner: str, note_id: int) -> bool:
        """Delete one of ``owner``'s notes; False if there is no such note of theirs."""
        return await anyio.to_thread.run_sync(self._delete, owner, note_id)
