"""Tokens rooted in a browser session die with it (SPEC wave 2, "the idea").

:class:`SessionTokens` is the :class:`~keyturn.sessions.manager.SessionListener`
of :class:`~keyturn.runtime.Keyturn`: whenever browser sessions end by
revocation (sign-out, sign-out everywhere, a revoke on ``/account`` or the CLI,
a password change, a disabled user, eviction), it denies the access tokens
minted from them (``sid`` = the session's handle, ``POST /auth/token``) and
ends the refresh families the authorization code flow opened in them, with
their access tokens (``sid`` = the family). Nothing here runs on the hot path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from keyturn.stores.records import Session
from keyturn.tokens.refresh import RefreshFamilies
from keyturn.tokens.revocation import RevocationReplica

__all__ = ["SessionTokens"]


class SessionTokens:
    """Ends what a browser session issued when the session ends.

    Args:
        revocations: denies the session's own short tokens (by ``sid``).
        families: returns the refresh families (built lazily: the runtime
            makes them once the key-encryption key is loaded).
    """

    def __init__(
        self, revocations: RevocationReplica, families: Callable[[], RefreshFamilies]
    ) -> None:
        self.revocations = revocations
        self._families = families

    async def sessions_ended(self, sessions: Sequence[Session]) -> None:
        """Deny the sessions' tokens and end their refresh families.

        Raises:
            StoreUnavailable: a store cannot be reached (the local replica
                refuses the session's tokens anyway).
        """
        if not sessions:
            return
        await self.revocations.sessions_ended(sessions)
        await self._families().end_for_sessions([session.handle for session in sessions])
