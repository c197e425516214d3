"""OAuth clients in the ``oauth_clients`` table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from keyturn.errors import AlreadyExists
from keyturn.stores.records import Client
from keyturn.stores.sql.direct import PostgresDirect, SqliteDirect
from keyturn.stores.sql.engine import connect
from keyturn.stores.sql.schema import oauth_clients

_COLUMNS = tuple(column.name for column in oauth_clients.columns)
#: The read by id as plain SQL (:mod:`keyturn.stores.sql.direct`): every client
#: authentication (introspection, revocation, the client-credentials and code
#: grants) reads it, and one trip through SQLAlchemy Core cost about as much as the
#: rest of an introspection.
_GET_BY_ID = f"SELECT {', '.join(_COLUMNS)} FROM oauth_clients WHERE id = ?"  # noqa: S608


def _from_row(row: Mapping[str, Any] | sa.RowMapping) -> Client:
    return Client(
        id=row["id"],
        name=row["name"],
        confidential=bool(row["confidential"]),
        created_at=float(row["created_at"]),
        secret_hash=row["secret_hash"],
        registered_scopes=_optional_words(row["allowed_scopes"]),
        first_party=bool(row["first_party"]),
        redirect_uris=tuple(row["redirect_uris"].split()),
        post_logout_redirect_uris=tuple(row["post_logout_redirect_uris"].split()),
        registered_grants=_optional_words(row["grant_types"]),
        backchannel_logout_uri=row["backchannel_logout_uri"],
        id_token_alg=row["id_token_alg"],
    )


def _optional_words(text: str | None) -> tuple[str, ...] | None:
    """A space-separated column; NULL (a client from before the column) stays None."""
    return None if text is None else tuple(text.split())


def _words(values: tuple[str, ...] | None) -> str | None:
    return None if values is None else " ".join(values)


def _to_row(client: Client) -> dict[str, Any]:
    return {
        "id": client.id,
        "name": client.name,
        "confidential": client.confidential,
        "secret_hash": client.secret_hash,
        "created_at": client.created_at,
        "allowed_scopes": _words(client.registered_scopes),
        "first_party": client.first_party,
        "redirect_uris": " ".join(client.redirect_uris),
        "post_logout_redirect_uris": " ".join(client.post_logout_redirect_uris),
        "grant_types": _words(client.registered_grants),
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "id_token_alg": client.id_token_alg,
    }


class SqlClientStore:
    """Clients keyed by ``id``; only the SHA-256 of a secret is stored."""

    def __init__(
        self, engine: AsyncEngine, direct: SqliteDirect | PostgresDirect | None = None
    ) -> None:
        self._engine = engine
        self._direct = direct  # get() by plain SQL when given

    async def add(self, client: Client) -> None:
        try:
            async with connect(self._engine, write=True) as connection:
                await connection.execute(oauth_clients.insert().values(**_to_row(client)))
        except sa_exc.IntegrityError:
            raise AlreadyExists(f"client {client.id!r} already exists") from None

    async def get(self, client_id: str) -> Client | None:
        if self._direct is not None:
            found = await self._direct.read_one(_GET_BY_ID, (client_id,))
            return _from_row(dict(zip(_COLUMNS, found, strict=True))) if found else None
        query = sa.select(oauth_clients).where(oauth_clients.c.id == client_id)
        async with connect(self._engine) as connection:
            row = (await connection.execute(query)).mappings().first()
        return _from_row(row) if row is not None else None

    async def list(self) -> list[Client]:
        query = sa.select(oauth_clients).order_by(oauth_clients.c.created_at, oauth_clients.c.id)
        async with connect(self._engine) as connection:
            result = await connection.execute(query)
            return [_from_row(row) for row in result.mappings()]

    async def remove(self, client_id: str) -> bool:
        statement = oauth_clients.delete().where(oauth_clients.c.id == client_id)
        async with connect(self._engine, write=True) as connection:
            result = await connection.execute(statement)
        return bool(result.rowcount)
