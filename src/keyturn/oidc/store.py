"""Which clients hold an ID token in which browser session (for back-channel logout).

The code grant records one :class:`IdTokenSession` per (browser session, client)
when it issues an ID token; when the session ends,
:meth:`IdTokenSessionStore.take_for_sessions` removes and returns the entries in
one step, so each relying party is told once. Entries of sessions that expired
without being ended are purged after the longest session lifetime.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["IdTokenSession", "IdTokenSessionStore", "MemoryIdTokenSessionStore"]


@dataclass(frozen=True, slots=True)
class IdTokenSession:
    """``client_id`` received an ID token for ``user_id`` in the browser session
    with public handle ``session_handle`` (the ``sid`` claim)."""

    session_handle: str
    client_id: str
    user_id: str
    created_at: float


class IdTokenSessionStore(Protocol):
    """Where ID-token recipients per browser session are kept."""

    async def record(self, entry: IdTokenSession) -> None:
        """Remember ``entry``; a second entry for the same session and client
        is a no-op (the first stays).

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        ...

    async def take_for_sessions(self, handles: Sequence[str]) -> list[IdTokenSession]:
        """Delete and return every entry of these sessions (each returned once
        even when two callers race).

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        ...

    async def purge(self, created_before: float) -> int:
        """Delete entries created before ``created_before``; return how many.

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        ...


class MemoryIdTokenSessionStore:
    """The in-process reference (one process only)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], IdTokenSession] = {}

    async def record(self, entry: IdTokenSession) -> None:
        """See :meth:`IdTokenSessionStore.record`."""
        self._entries.setdefault((entry.session_handle, entry.client_id), entry)

    async def take_for_sessions(self, handles: Sequence[str]) -> list[IdTokenSession]:
        """See :meth:`IdTokenSessionStore.take_for_sessions`."""
        wanted = set(handles)
        taken = [entry for key, entry in self._entries.items() if key[0] in wanted]
        for entry in taken:
            del self._entries[(entry.session_handle, entry.client_id)]
        return taken

    async def purge(self, created_before: float) -> int:
        """See :meth:`IdTokenSessionStore.purge`."""
        old = [key for key, entry in self._entries.items() if entry.created_at < created_before]
        for key in old:
            del self._entries[key]
        return len(old)
