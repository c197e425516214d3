"""A client as the authorization code flow sees it.

:class:`FlowClient` is what ``/oauth/authorize`` and the code grant need of a
registered client (it satisfies :class:`keyturn.oauth.request.AuthorizationClient`);
:func:`flow_client` builds it from a stored client record.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["ClientRecord", "FlowClient", "flow_client"]


@dataclass(frozen=True)
class FlowClient:
    """What the authorization endpoint needs to know of a client (satisfies
    :class:`keyturn.oauth.request.AuthorizationClient`)."""

    id: str
    name: str
    confidential: bool
    first_party: bool
    redirect_uris: Sequence[str]
    allowed_scopes: Collection[str]
    grant_types: Collection[str]
    #: The ID token's signing algorithm (OIDC); RS256 unless registered otherwise.
    id_token_alg: str = "RS256"  # noqa: S105 (an algorithm name)


class ClientRecord(Protocol):
    """The stored client record's fields the flow reads
    (:class:`keyturn.stores.records.Client` has them)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def confidential(self) -> bool: ...
    @property
    def first_party(self) -> bool: ...
    @property
    def redirect_uris(self) -> tuple[str, ...]: ...
    @property
    def grant_types(self) -> tuple[str, ...]: ...
    @property
    def id_token_alg(self) -> str | None: ...


def flow_client(record: ClientRecord, allowed_scopes: Collection[str]) -> FlowClient:
    """A stored client record as the code flow sees it, with the scopes
    :meth:`keyturn.oauth.clients.Clients.allowed_scopes` gives it (the
    server's default scopes for a wave-1 client)."""
    return FlowClient(
        id=record.id,
        name=record.name,
        confidential=record.confidential,
        first_party=record.first_party,
        redirect_uris=record.redirect_uris,
        allowed_scopes=frozenset(allowed_scopes),
        grant_types=frozenset(record.grant_types),
        id_token_alg=record.id_token_alg or "RS256",
    )
