"""A client as the authorization code flow sees it.

:class:`FlowClient` is what ``/oauth/authorize`` and the code grant need of a
registered client (it satisfies :class:`keyturn.oauth.request.AuthorizationClient`);
:func:`flow_client` builds it from a stored client record.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

__all__ = ["DEFAULT_GRANTS", "FlowClient", "flow_client"]


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


#: The grants of a client registered without any (SPEC "Clients": the default).
DEFAULT_GRANTS = ("authorization_code", "refresh_token")


def flow_client(record: object, allowed_scopes: Collection[str]) -> FlowClient:
    """A stored client record as the code flow sees it.

    Records of clients registered before the wave-2 client model (no redirect
    URIs, grants or first-party flag) get no redirect URI, so they cannot use
    the code flow until registered again, and the default grants.
    """
    grants = getattr(record, "grant_types", None) or DEFAULT_GRANTS
    return FlowClient(
        id=str(getattr(record, "id")),  # noqa: B009 (any record with these attributes)
        name=str(getattr(record, "name", "")),
        confidential=bool(getattr(record, "confidential", False)),
        first_party=bool(getattr(record, "first_party", False)),
        redirect_uris=tuple(getattr(record, "redirect_uris", None) or ()),
        allowed_scopes=frozenset(allowed_scopes),
        grant_types=frozenset(grants),
    )
