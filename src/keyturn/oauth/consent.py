"""Consent: what each user allowed each third-party client.

A third-party client asks once per user and scope set (SPEC "Clients"): the
grant remembers the union of the scopes the user allowed, and a later request
is *covered* when every requested scope is in it. Asking for a new scope shows
the consent page again, for the new scopes. With no grant at all, nothing is
covered, not even an empty scope set: a token names the user to the client,
which is itself worth asking about. First-party clients skip consent; that
decision belongs to the caller, which knows the client record.

Revoking returns the grant so the caller can end that client's refresh
families for the user ("Connected apps" on ``/account``).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable

from keyturn.clock import Clock
from keyturn.oauth.store import ConsentGrant, ConsentStore

__all__ = ["Consents"]


class Consents:
    """Consent grants over a :class:`ConsentStore`.

    Args:
        store: where grants live.
        clock: supplies ``granted_at`` and ``updated_at``.
    """

    def __init__(self, store: ConsentStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def covered(self, user_id: str, client_id: str, requested: Iterable[str]) -> bool:
        """Whether the user already allowed every scope in ``requested``.

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        grant = await self.store.get(user_id, client_id)
        return grant is not None and set(requested) <= grant.scopes

    async def missing(
        self, user_id: str, client_id: str, requested: Iterable[str]
    ) -> tuple[str, ...]:
        """The requested scopes not granted yet, in request order: what the
        consent page asks about.

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        grant = await self.store.get(user_id, client_id)
        granted = grant.scopes if grant is not None else frozenset()
        return tuple(dict.fromkeys(scope for scope in requested if scope not in granted))

    async def grant(self, user_id: str, client_id: str, scopes: Iterable[str]) -> ConsentGrant:
        """Record that the user allowed ``scopes``, added to what they allowed before.

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        now = self.clock.now()
        existing = await self.store.get(user_id, client_id)
        grant = ConsentGrant(
            user_id=user_id,
            client_id=client_id,
            scopes=frozenset(scopes) | (existing.scopes if existing else frozenset()),
            granted_at=existing.granted_at if existing else now,
            updated_at=now,
        )
        await self.store.put(grant)
        return grant

    async def revoke(self, user_id: str, client_id: str) -> ConsentGrant | None:
        """Forget the user's grant to the client; return it (None if there was
        none), so the caller can end the client's refresh families for the user.

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        return await self.store.delete(user_id, client_id)

    async def list(self, user_id: str) -> builtins.list[ConsentGrant]:
        """The user's grants, oldest first ("Connected apps").

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        return await self.store.list_for_user(user_id)
