"""Account tokens: the single-use secrets in password-reset, verification and
e-mail-change links, and the one store Protocol every backend implements.

The secret itself (``secrets.token_urlsafe(32)``, 256 bits) only ever travels in
the mail; the store keeps its SHA-256 (a fast hash is enough for a 256-bit random
secret: there is nothing to guess). Issuing one removes the user's earlier tokens
of the same purpose (the newer request wins); redeeming is one atomic
delete-if-live, so a token works once even when two requests race.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

__all__ = ["AccountToken", "AccountTokenStore", "TokenPurpose"]


class TokenPurpose(enum.StrEnum):
    """What a link may do; a token of one purpose never works for another."""

    PASSWORD_RESET = "password_reset"  # noqa: S105 (a purpose, not a secret)
    VERIFY_EMAIL = "verify_email"
    EMAIL_CHANGE = "email_change"


@dataclass(frozen=True, slots=True)
class AccountToken:
    """One stored token: its hash, whose it is, what for, and until when.

    ``new_email`` is the address an :attr:`TokenPurpose.EMAIL_CHANGE` token moves
    the account to (None for the other purposes).
    """

    token_hash: str
    user_id: str
    purpose: TokenPurpose
    created_at: float
    expires_at: float
    new_email: str | None = None


class AccountTokenStore(Protocol):
    """Hashed single-use account tokens. Every method is atomic."""

    async def issue(self, token: AccountToken) -> None:
        """Store ``token`` and delete the user's other tokens of its purpose.

        Raises:
            StoreUnavailable: the backend cannot be reached.
        """
        ...

    async def redeem(
        self, token_hash: str, purpose: TokenPurpose, *, now: float
    ) -> AccountToken | None:
        """Delete and return the token if it exists, has ``purpose`` and is live
        (``expires_at > now``); else None. Two concurrent calls never both win.

        Raises:
            StoreUnavailable: the backend cannot be reached.
        """
        ...

    async def revoke_user(self, user_id: str, purposes: frozenset[TokenPurpose]) -> int:
        """Delete the user's tokens of ``purposes``; return how many.

        Raises:
            StoreUnavailable: the backend cannot be reached.
        """
        ...

    async def sweep(self, *, now: float) -> int:
        """Delete expired tokens; return how many.

        Raises:
            StoreUnavailable: the backend cannot be reached.
        """
        ...
