"""In-process reference implementations of the :mod:`keyturn.oauth.store` Protocols.

For tests and single-process development. Each compare-and-set runs without an
``await`` between its read and its write, so on one event loop it is atomic
without a lock; nothing here is safe across threads or processes.
"""

from __future__ import annotations

import dataclasses

from keyturn.oauth.store import AuthorizationCode, ConsentGrant, PushedRequest

__all__ = ["MemoryCodeStore", "MemoryConsentStore", "MemoryPushedRequestStore"]


class MemoryCodeStore:
    """Authorization codes in a dict (see :class:`keyturn.oauth.store.CodeStore`)."""

    def __init__(self) -> None:
        self._codes: dict[str, AuthorizationCode] = {}

    async def add(self, code: AuthorizationCode) -> None:
        if code.code_hash in self._codes:
            raise ValueError("duplicate authorization code")
        self._codes[code.code_hash] = code

    async def get(self, code_hash: str) -> AuthorizationCode | None:
        return self._codes.get(code_hash)

    async def consume(self, code_hash: str, now: float) -> bool:
        code = self._codes.get(code_hash)
        if code is None or code.used_at is not None:
            return False
        self._codes[code_hash] = dataclasses.replace(code, used_at=now)
        return True

    async def set_family(self, code_hash: str, family_id: str) -> None:
        code = self._codes.get(code_hash)
        if code is not None and code.used_at is not None:
            self._codes[code_hash] = dataclasses.replace(code, family_id=family_id)

    async def purge(self, expired_before: float) -> int:
        old = [key for key, code in self._codes.items() if code.expires_at < expired_before]
        for key in old:
            del self._codes[key]
        return len(old)


class MemoryPushedRequestStore:
    """PAR requests in a dict (see :class:`keyturn.oauth.store.PushedRequestStore`)."""

    def __init__(self) -> None:
        self._requests: dict[str, PushedRequest] = {}

    async def add(self, request: PushedRequest) -> None:
        if request.request_uri_hash in self._requests:
            raise ValueError("duplicate request_uri")
        self._requests[request.request_uri_hash] = request

    async def get(self, request_uri_hash: str) -> PushedRequest | None:
        return self._requests.get(request_uri_hash)

    async def consume(self, request_uri_hash: str, now: float) -> bool:
        request = self._requests.get(request_uri_hash)
        if request is None or request.used_at is not None:
            return False
        self._requests[request_uri_hash] = dataclasses.replace(request, used_at=now)
        return True

    async def purge(self, expired_before: float) -> int:
        old = [key for key, req in self._requests.items() if req.expires_at < expired_before]
        for key in old:
            del self._requests[key]
        return len(old)


class MemoryConsentStore:
    """Consent grants in a dict (see :class:`keyturn.oauth.store.ConsentStore`)."""

    def __init__(self) -> None:
        self._grants: dict[tuple[str, str], ConsentGrant] = {}

    async def get(self, user_id: str, client_id: str) -> ConsentGrant | None:
        return self._grants.get((user_id, client_id))

    async def put(self, grant: ConsentGrant) -> None:
        self._grants[(grant.user_id, grant.client_id)] = grant

    async def delete(self, user_id: str, client_id: str) -> ConsentGrant | None:
        return self._grants.pop((user_id, client_id), None)

    async def list_for_user(self, user_id: str) -> list[ConsentGrant]:
        grants = [grant for (user, _), grant in self._grants.items() if user == user_id]
        return sorted(grants, key=lambda grant: grant.granted_at)

    async def delete_for_client(self, client_id: str) -> int:
        keys = [key for key in self._grants if key[1] == client_id]
        for key in keys:
            del self._grants[key]
        return len(keys)
