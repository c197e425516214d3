"""OAuth clients: register, and authenticate with a client secret.

Each client has the scopes it may ask for (``allowed_scopes``): the default
set (``--default-scopes``, SPEC "Clients": ``openid profile email
offline_access``) plus any the operator names at registration
(:meth:`Clients.allowed_scopes` is the one rule every grant applies).

A confidential client gets a secret of 256 random bits
(:func:`secrets.token_urlsafe`), shown once at creation and stored only as its
SHA-256. A fast hash is the right tool here, unlike for passwords: the secret
has full entropy, so there is nothing to guess that a slow hash would protect.
Comparison is constant-time (:func:`hmac.compare_digest`). A public client
(SPA, mobile app) has an id and no secret.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from keyturn.clock import Clock
from keyturn.errors import InvalidClient, InvalidRequest
from keyturn.oauth.registration import check_metadata
from keyturn.settings import DEFAULT_SCOPES
from keyturn.stores.protocols import ClientStore
from keyturn.stores.records import Client
from keyturn.tokens.scopes import check_allowed_scope, scope_list

__all__ = ["Clients", "NewClient", "hash_client_secret"]

_ID_FORMAT = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MAX_NAME = 200
_MAX_SECRET = 256
#: Compared against when the client is unknown, so both paths do the same work.
_DUMMY_HASH = hashlib.sha256(b"keyturn-no-such-client").hexdigest()


def hash_client_secret(secret: str) -> str:
    """The stored form of a client secret: SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class NewClient:
    """A just-registered client; ``secret`` exists only here and only once."""

    client: Client
    secret: str | None = field(repr=False)

    def to_dict(self) -> dict[str, str | None]:
        """``{"client_id", "client_secret"}`` (the secret is None for a public client)."""
        return {"client_id": self.client.id, "client_secret": self.secret}


class Clients:
    """OAuth client registration and authentication over a :class:`ClientStore`.

    Args:
        store: where clients live.
        clock: supplies ``created_at``.
        default_scopes: the scopes of keyturn's own first-party use and the base
            set of every new client (``settings.default_scopes``).
    """

    def __init__(
        self, store: ClientStore, clock: Clock, *, default_scopes: Sequence[str] = DEFAULT_SCOPES
    ) -> None:
        self.store = store
        self.clock = clock
        self.default_scopes = scope_list(default_scopes)

    async def add(
        self,
        name: str,
        *,
        confidential: bool = False,
        scopes: Iterable[str] = (),
        first_party: bool = False,
        redirect_uris: Iterable[str] = (),
        post_logout_redirect_uris: Iterable[str] = (),
        grant_types: Iterable[str] | None = None,
        backchannel_logout_uri: str | None = None,
        id_token_alg: str | None = None,
    ) -> NewClient:
        """Register a client named ``name`` (a label for operators), allowed the
        default scopes plus ``scopes`` (SPEC "Clients"; the rules for the other
        values are :func:`keyturn.oauth.registration.check_metadata`'s).
        ``grant_types`` None: ``authorization_code`` and ``refresh_token``.

        Raises:
            InvalidRequest: the name is empty or longer than 200 characters, or a
                scope is not a valid scope value (:class:`InvalidScope`).
            InvalidRedirectUri: a redirect or post-logout URI breaks a rule.
            InvalidClientMetadata: a grant or algorithm keyturn does not know,
                ``client_credentials`` for a public client, a bad back-channel URI.
            StoreUnavailable: the store cannot be reached.
        """
        name = name.strip()
        if not name or len(name) > _MAX_NAME or not name.isprintable():
            raise InvalidRequest("a client name is 1 to 200 printable characters")
        allowed = scope_list([*self.default_scopes, *scopes])
        metadata = check_metadata(
            confidential=confidential,
            redirect_uris=redirect_uris,
            post_logout_redirect_uris=post_logout_redirect_uris,
            grant_types=grant_types,
            backchannel_logout_uri=backchannel_logout_uri,
            id_token_alg=id_token_alg,
        )
        secret = secrets.token_urlsafe(32) if confidential else None
        client = Client(
            id=str(uuid.uuid4()),
            name=name,
            confidential=confidential,
            created_at=self.clock.now(),
            secret_hash=hash_client_secret(secret) if secret is not None else None,
            registered_scopes=allowed,
            first_party=first_party,
            redirect_uris=metadata.redirect_uris,
            post_logout_redirect_uris=metadata.post_logout_redirect_uris,
            registered_grants=metadata.grant_types,
            backchannel_logout_uri=metadata.backchannel_logout_uri,
            id_token_alg=metadata.id_token_alg,
        )
        await self.store.add(client)
        return NewClient(client, secret)

    async def remove(self, client_id: str) -> bool:
        """Delete the client ``client_id``; whether there was one. Its refresh
        tokens stop working at once (a refresh names a client that no longer
        exists); its outstanding access tokens run out within their lifetime.

        Raises:
            StoreUnavailable: the store cannot be reached.
        """
        if not isinstance(client_id, str) or _ID_FORMAT.fullmatch(client_id) is None:
            return False
        return await self.store.remove(client_id)

    def allowed_scopes(self, client: Client | None) -> tuple[str, ...]:
        """What ``client`` may ask for: its own allowlist, or the default scopes
        for keyturn's first-party use (``client`` None) and for clients
        registered before clients had scopes."""
        if client is None or client.registered_scopes is None:
            return self.default_scopes
        return client.registered_scopes

    async def check_scope(self, scope: str, client_id: str | None) -> None:
        """Refuse a normalized ``scope`` that the client ``client_id`` (None:
        keyturn's own first-party use) may not ask for.

        Raises:
            InvalidScope: a value outside the allowlist.
            InvalidClient: no client has this id.
            StoreUnavailable: the store cannot be reached.
        """
        if not scope:
            return  # nothing asked for, nothing to look up
        client = None
        if client_id is not None:
            client = await self.get(client_id)
            if client is None:
                raise InvalidClient()
        check_allowed_scope(scope, self.allowed_scopes(client))

    async def get(self, client_id: str) -> Client | None:
        """The client with this id, or None (malformed ids without a store call)."""
        if not isinstance(client_id, str) or _ID_FORMAT.fullmatch(client_id) is None:
            return None
        return await self.store.get(client_id)

    async def list(self) -> builtins.list[Client]:
        """Every client, oldest first."""
        return await self.store.list()

    async def authenticate_client(self, client_id: str, secret: str | None) -> Client:
        """The client ``client_id``, if ``secret`` proves it.

        A confidential client needs its secret; a public client must not send
        one (a secret for a public client is a confused caller, refused).

        Raises:
            InvalidClient: unknown client, missing or wrong secret.
            StoreUnavailable: the store cannot be reached.
        """
        client = await self.get(client_id)
        presented = secret if isinstance(secret, str) and len(secret) <= _MAX_SECRET else None
        stored = client.secret_hash if client is not None else None
        expected = stored or _DUMMY_HASH
        given = hash_client_secret(presented) if presented is not None else ""
        matches = hmac.compare_digest(expected, given)
        if client is None:
            raise InvalidClient()
        if client.confidential:
            if stored is None or presented is None or not matches:
                raise InvalidClient()
        elif secret is not None:
            raise InvalidClient()
        return client

    #: The same check under a shorter name.
    authenticate = authenticate_client

    async def authenticate_confidential(self, client_id: str, secret: str | None) -> Client:
        """As :meth:`authenticate_client`, and the client must be confidential
        (``/oauth/introspect`` callers).

        Raises:
            InvalidClient: see :meth:`authenticate_client`, or a public client.
        """
        client = await self.authenticate_client(client_id, secret)
        if not client.confidential:
            raise InvalidClient()
        return client
