"""In-process reference implementations of the MFA stores.

Each method runs without awaiting, so it is atomic on the event loop. Nothing
here is shared between processes: a deployment with more than one instance must
use the SQL/Redis implementations (the replay store above all, or a TOTP code
could be accepted once per instance).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from keyturn.mfa.store import (
    MfaChallenge,
    PasskeyCredential,
    TotpFactor,
    WebAuthnChallenge,
)

__all__ = [
    "MemoryMfaChallengeStore",
    "MemoryPasskeyStore",
    "MemoryRecoveryCodeStore",
    "MemoryTotpReplayStore",
    "MemoryTotpStore",
    "MemoryWebAuthnChallengeStore",
]


class MemoryTotpStore:
    """Active and pending factors in two dicts."""

    def __init__(self) -> None:
        self._active: dict[str, TotpFactor] = {}
        self._pending: dict[str, TotpFactor] = {}

    async def set_pending(self, factor: TotpFactor) -> None:
        self._pending[factor.user_id] = factor

    async def get_pending(self, user_id: str) -> TotpFactor | None:
        return self._pending.get(user_id)

    async def activate(self, user_id: str, sealed_secret: bytes, confirmed_at: float) -> bool:
        pending = self._pending.get(user_id)
        if pending is None or pending.sealed_secret != sealed_secret:
            return False
        del self._pending[user_id]
        self._active[user_id] = dataclasses.replace(pending, confirmed_at=confirmed_at)
        return True

    async def get_active(self, user_id: str) -> TotpFactor | None:
        return self._active.get(user_id)

    async def delete(self, user_id: str) -> bool:
        had_active = self._active.pop(user_id, None) is not None
        had_pending = self._pending.pop(user_id, None) is not None
        return had_active or had_pending


class MemoryTotpReplayStore:
    """Claimed (user, step) pairs with their expiry; expired ones are swept on use."""

    def __init__(self) -> None:
        self._claims: dict[tuple[str, int], float] = {}

    async def claim(self, user_id: str, step: int, expires_at: float, now: float) -> bool:
        for key in [key for key, until in self._claims.items() if until <= now]:
            del self._claims[key]
        if (user_id, step) in self._claims:
            return False
        self._claims[(user_id, step)] = expires_at
        return True

    def __len__(self) -> int:
        return len(self._claims)


class MemoryRecoveryCodeStore:
    """One set of hashes per user."""

    def __init__(self) -> None:
        self._sets: dict[str, set[str]] = {}

    async def replace(self, user_id: str, code_hashes: Sequence[str], created_at: float) -> None:
        self._sets[user_id] = set(code_hashes)

    async def consume(self, user_id: str, code_hash: str) -> bool:
        codes = self._sets.get(user_id)
        if codes is None or code_hash not in codes:
            return False
        codes.discard(code_hash)
        return True

    async def remaining(self, user_id: str) -> int:
        return len(self._sets.get(user_id, ()))

    async def delete(self, user_id: str) -> None:
        self._sets.pop(user_id, None)

    def hashes(self, user_id: str) -> frozenset[str]:
        """What is stored for ``user_id`` (for tests: hashes, never codes)."""
        return frozenset(self._sets.get(user_id, ()))


class MemoryMfaChallengeStore:
    """Challenges by token hash."""

    def __init__(self) -> None:
        self._by_hash: dict[str, MfaChallenge] = {}

    async def add(self, challenge: MfaChallenge) -> None:
        self._by_hash[challenge.token_hash] = challenge

    async def get(self, token_hash: str, now: float) -> MfaChallenge | None:
        challenge = self._by_hash.get(token_hash)
        if challenge is not None and now >= challenge.expires_at:
            del self._by_hash[token_hash]
            return None
        return challenge

    async def claim_attempt(
        self, token_hash: str, now: float, max_attempts: int
    ) -> MfaChallenge | None:
        challenge = await self.get(token_hash, now)
        if challenge is None:
            return None
        if challenge.attempts >= max_attempts:
            del self._by_hash[token_hash]
            return None
        updated = dataclasses.replace(challenge, attempts=challenge.attempts + 1)
        self._by_hash[token_hash] = updated
        return updated

    async def consume(self, token_hash: str, now: float) -> bool:
        if await self.get(token_hash, now) is None:
            return False
        del self._by_hash[token_hash]
        return True

    async def delete(self, token_hash: str) -> None:
        self._by_hash.pop(token_hash, None)

    async def delete_for_user(self, user_id: str) -> int:
        doomed = [key for key, item in self._by_hash.items() if item.user_id == user_id]
        for key in doomed:
            del self._by_hash[key]
        return len(doomed)


class MemoryWebAuthnChallengeStore:
    """Ceremony challenges by hash."""

    def __init__(self) -> None:
        self._by_hash: dict[str, WebAuthnChallenge] = {}

    async def add(self, challenge: WebAuthnChallenge) -> None:
        self._by_hash[challenge.challenge_hash] = challenge

    async def consume(self, challenge_hash: str, now: float) -> WebAuthnChallenge | None:
        challenge = self._by_hash.pop(challenge_hash, None)
        if challenge is None or now >= challenge.expires_at:
            return None
        return challenge


class MemoryPasskeyStore:
    """Credentials by id."""

    def __init__(self) -> None:
        self._by_id: dict[bytes, PasskeyCredential] = {}

    async def add(self, credential: PasskeyCredential) -> bool:
        if credential.id in self._by_id:
            return False
        self._by_id[credential.id] = credential
        return True

    async def get(self, credential_id: bytes) -> PasskeyCredential | None:
        return self._by_id.get(credential_id)

    async def list_for_user(self, user_id: str) -> list[PasskeyCredential]:
        mine = [cred for cred in self._by_id.values() if cred.user_id == user_id]
        return sorted(mine, key=lambda cred: (cred.created_at, cred.id))

    async def record_use(
        self, credential_id: bytes, *, sign_count: int, used_at: float, backed_up: bool
    ) -> None:
        credential = self._by_id.get(credential_id)
        if credential is not None:
            self._by_id[credential_id] = dataclasses.replace(
                credential, sign_count=sign_count, last_used_at=used_at, backed_up=backed_up
            )

    async def delete(self, user_id: str, credential_id: bytes) -> bool:
        credential = self._by_id.get(credential_id)
        if credential is None or credential.user_id != user_id:
            return False
        del self._by_id[credential_id]
        return True

    async def delete_all(self, user_id: str) -> int:
        mine = [cid for cid, cred in self._by_id.items() if cred.user_id == user_id]
        for credential_id in mine:
            del self._by_id[credential_id]
        return len(mine)
