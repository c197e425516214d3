"""More than one :class:`~keyturn.sessions.manager.SessionListener` on one manager.

The session manager tells one listener about ended sessions; keyturn has
several (the session's tokens die with it, back-channel logout tells the apps),
so :class:`SessionListeners` calls each in order. A listener may be given as a
zero-argument function returning it (or None), for parts the runtime builds
lazily after the session manager exists.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from keyturn.sessions.manager import SessionListener
from keyturn.stores.records import Session

__all__ = ["SessionListeners"]

ListenerSource = SessionListener | Callable[[], SessionListener | None]


class SessionListeners:
    """Calls every listener in order with the same ended sessions; the first
    error stops the rest (the token side comes first: it is the one that must
    not be skipped)."""

    def __init__(self, *listeners: ListenerSource) -> None:
        self._listeners = listeners

    async def sessions_ended(self, sessions: Sequence[Session]) -> None:
        """Tell each listener that ``sessions`` ended.

        Raises:
            StoreUnavailable: a listener could not reach its store.
        """
        for source in self._listeners:
            listener = source if hasattr(source, "sessions_ended") else source()
            if listener is not None:
                await listener.sessions_ended(sessions)
