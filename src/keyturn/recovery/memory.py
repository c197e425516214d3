"""The in-process reference :class:`~keyturn.recovery.store.AccountTokenStore`."""

from __future__ import annotations

from keyturn.recovery.store import AccountToken, TokenPurpose

__all__ = ["MemoryAccountTokenStore"]


class MemoryAccountTokenStore:
    """Account tokens in a dict keyed by hash (one process: tests, embedded dev)."""

    def __init__(self) -> None:
        self._tokens: dict[str, AccountToken] = {}

    def __repr__(self) -> str:
        return f"MemoryAccountTokenStore(tokens={len(self._tokens)})"

    async def issue(self, token: AccountToken) -> None:
        """See :meth:`AccountTokenStore.issue`."""
        for key, held in list(self._tokens.items()):
            if held.user_id == token.user_id and held.purpose == token.purpose:
                del self._tokens[key]
        self._tokens[token.token_hash] = token

    async def redeem(
        self, token_hash: str, purpose: TokenPurpose, *, now: float
    ) -> AccountToken | None:
        """See :meth:`AccountTokenStore.redeem`."""
        held = self._tokens.get(token_hash)
        if held is None or held.purpose != purpose or held.expires_at <= now:
            return None
        del self._tokens[token_hash]
        return held

    async def revoke_user(self, user_id: str, purposes: frozenset[TokenPurpose]) -> int:
        """See :meth:`AccountTokenStore.revoke_user`."""
        doomed = [
            key
            for key, held in self._tokens.items()
            if held.user_id == user_id and held.purpose in purposes
        ]
        for key in doomed:
            del self._tokens[key]
        return len(doomed)

    async def sweep(self, *, now: float) -> int:
        """See :meth:`AccountTokenStore.sweep`."""
        doomed = [key for key, held in self._tokens.items() if held.expires_at <= now]
        for key in doomed:
            del self._tokens[key]
        return len(doomed)
