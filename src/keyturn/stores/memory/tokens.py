"""In-process reference implementations of the token stores: refresh families,
the revocation log and OAuth clients (see :mod:`keyturn.stores.memory`).

Every method runs without awaiting, so each is atomic under asyncio: that is
what makes :meth:`MemoryRefreshStore.rotate` single-winner here.
"""

from __future__ import annotations

import dataclasses
import itertools

from keyturn.errors import AlreadyExists
from keyturn.stores.records import Client, RefreshFamily, RefreshToken, Revocation


def _counts_toward_cap(family: RefreshFamily, now: float, idle_timeout: float | None) -> bool:
    """Whether ``family`` is live at ``now`` for the per-user cap of ``create_family``."""
    if not family.is_live(now):
        return False
    return idle_timeout is None or now < family.last_used_at + idle_timeout


class MemoryRefreshStore:
    """Families and tokens in dicts, with a per-family token index."""

    def __init__(self) -> None:
        self._families: dict[str, RefreshFamily] = {}
        self._tokens: dict[str, RefreshToken] = {}
        self._tokens_by_family: dict[str, set[str]] = {}

    async def create_family(
        self,
        family: RefreshFamily,
        token: RefreshToken,
        *,
        max_per_user: int | None = None,
        idle_timeout: float | None = None,
    ) -> list[RefreshFamily]:
        self._families[family.id] = family
        self._add_token(token)
        if max_per_user is None:
            return []
        now = family.created_at
        others = [
            other
            for other in await self.list_families(family.user_id)
            if other.id != family.id and _counts_toward_cap(other, now, idle_timeout)
        ]
        excess = len(others) + 1 - max_per_user
        evicted = []
        for old in others[: max(excess, 0)]:
            revoked = await self.revoke_family(old.id, now)
            assert revoked is not None
            evicted.append(revoked)
        return evicted

    async def get_token(self, token_hash: str) -> tuple[RefreshToken, RefreshFamily] | None:
        token = self._tokens.get(token_hash)
        if token is None:
            return None
        family = self._families.get(token.family_id)
        return (token, family) if family is not None else None

    async def rotate(
        self,
        token_hash: str,
        successor: RefreshToken,
        *,
        now: float,
        grace_until: float | None,
        grace_payload: bytes | None,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> bool:
        token = self._tokens.get(token_hash)
        if token is None or token.used_at is not None:
            return False
        family = self._families.get(token.family_id)
        if family is None or family.revoked_at is not None:
            return False
        self._tokens[token_hash] = dataclasses.replace(
            token, used_at=now, grace_until=grace_until, grace_payload=grace_payload
        )
        self._add_token(successor)
        changes: dict[str, object] = {"last_used_at": max(family.last_used_at, now)}
        if ip is not None:
            changes["ip"] = ip
        if user_agent is not None:
            changes["user_agent"] = user_agent
        self._families[family.id] = dataclasses.replace(family, **changes)  # type: ignore[arg-type]
        return True

    async def clear_grace(self, token_hash: str) -> None:
        token = self._tokens.get(token_hash)
        if token is not None and token.grace_payload is not None:
            self._tokens[token_hash] = dataclasses.replace(token, grace_payload=None)

    async def get_family(self, family_id: str) -> RefreshFamily | None:
        return self._families.get(family_id)

    async def list_families(self, user_id: str) -> list[RefreshFamily]:
        mine = [f for f in self._families.values() if f.user_id == user_id]
        return sorted(mine, key=lambda f: (f.created_at, f.id))

    async def revoke_family(self, family_id: str, now: float) -> RefreshFamily | None:
        family = self._families.get(family_id)
        if family is None:
            return None
        if family.revoked_at is None:
            family = dataclasses.replace(family, revoked_at=now)
            self._families[family_id] = family
        for token_hash in self._tokens_by_family.get(family_id, ()):
            await self.clear_grace(token_hash)
        return family

    async def revoke_for_user(self, user_id: str, now: float) -> list[RefreshFamily]:
        revoked = []
        for family in await self.list_families(user_id):
            if family.revoked_at is None:
                done = await self.revoke_family(family.id, now)
                assert done is not None
                revoked.append(done)
        return revoked

    async def revoke_for_sessions(self, session_ids: list[str], now: float) -> list[RefreshFamily]:
        wanted = set(session_ids)
        mine = [f for f in self._families.values() if f.session_id in wanted]
        revoked = []
        for family in sorted(mine, key=lambda f: (f.created_at, f.id)):
            if family.revoked_at is None:
                done = await self.revoke_family(family.id, now)
                assert done is not None
                revoked.append(done)
        return revoked

    async def sweep(self, now: float) -> int:
        deleted = 0
        for family in [f for f in self._families.values() if f.expires_at <= now]:
            del self._families[family.id]
            deleted += 1
            for token_hash in self._tokens_by_family.pop(family.id, set()):
                self._tokens.pop(token_hash, None)
                deleted += 1
        for token in list(self._tokens.values()):
            if token.expires_at <= now:
                self._remove_token(token)
                deleted += 1
            elif token.grace_payload is not None and (token.grace_until or 0.0) <= now:
                await self.clear_grace(token.token_hash)
        return deleted

    def _add_token(self, token: RefreshToken) -> None:
        self._tokens[token.token_hash] = token
        self._tokens_by_family.setdefault(token.family_id, set()).add(token.token_hash)

    def _remove_token(self, token: RefreshToken) -> None:
        self._tokens.pop(token.token_hash, None)
        hashes = self._tokens_by_family.get(token.family_id)
        if hashes is not None:
            hashes.discard(token.token_hash)


class MemoryRevocationStore:
    """The revocation log as a list in ``seq`` order."""

    def __init__(self) -> None:
        self._entries: list[Revocation] = []
        self._seq = itertools.count(1)

    async def add(self, entry: Revocation) -> Revocation:
        stored = dataclasses.replace(entry, seq=next(self._seq))
        self._entries.append(stored)
        return stored

    async def changes(self, *, after_seq: int, since: float, now: float) -> list[Revocation]:
        return [
            entry
            for entry in self._entries
            if (entry.seq > after_seq or entry.created_at >= since) and entry.expires_at > now
        ]

    async def sweep(self, now: float) -> int:
        before = len(self._entries)
        self._entries = [entry for entry in self._entries if entry.expires_at > now]
        return before - len(self._entries)


class MemoryClientStore:
    """OAuth clients in a dict."""

    def __init__(self) -> None:
        self._by_id: dict[str, Client] = {}

    async def add(self, client: Client) -> None:
        if client.id in self._by_id:
            raise AlreadyExists(f"client {client.id!r} already exists")
        self._by_id[client.id] = client

    async def get(self, client_id: str) -> Client | None:
        return self._by_id.get(client_id)

    async def list(self) -> list[Client]:
        return sorted(self._by_id.values(), key=lambda c: (c.created_at, c.id))

    async def remove(self, client_id: str) -> bool:
        return self._by_id.pop(client_id, None) is not None
