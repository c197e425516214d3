"""Helpers of the wave-2 contract suites: users to reference, and what a store holds."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import sqlalchemy as sa

from keyturn.stores.protocols import Storage
from keyturn.stores.records import User
from keyturn.stores.sql import SqlStorage
from keyturn.stores.sql.schema import WAVE2_TABLES
from keyturn.stores.wave2 import wave2_stores

T0 = 1_800_000_000.0


async def add_user(storage: Storage | SqlStorage, user_id: str) -> str:
    """Store a user with this id (the wave-2 rows reference ``users``) and return the id."""
    await storage.users.add(User(user_id, f"{user_id}@example.com", "$argon2id$x", 1.0))
    return user_id


async def stored_bytes(storage: Storage | SqlStorage) -> bytes:
    """Everything the wave-2 stores hold, as bytes: every row of every wave-2 table
    for a SQL storage, every value reachable from the memory stores otherwise."""
    engine = getattr(storage, "engine", None)
    if engine is None:
        return b"\n".join(_walk(wave2_stores(storage)))
    chunks: list[bytes] = []
    async with engine.connect() as connection:
        for table in WAVE2_TABLES:
            for row in await connection.execute(sa.select(table)):
                chunks.extend(_walk(tuple(row)))
    return b"\n".join(chunks)


def _walk(value: object) -> Iterator[bytes]:
    if isinstance(value, str):
        yield value.encode()
    elif isinstance(value, bytes | bytearray | memoryview):
        yield bytes(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(key)
            yield from _walk(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _walk(item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            yield from _walk(getattr(value, item.name))
    elif hasattr(value, "__dict__"):
        yield from _walk(vars(value))
    elif value is not None:
        yield str(value).encode()
