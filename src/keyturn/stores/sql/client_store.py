"""OAuth clients in the ``oauth_clients`` table."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from keyturn.errors import AlreadyExists
from keyturn.stores.records import Client
from keyturn.stores.sql.engine import connect
from keyturn.stores.sql.schema import oauth_clients


def _from_row(row: sa.RowMapping) -> Client:
    return Client(
        id=row["id"],
        name=row["name"],
        confidential=bool(row["confidential"]),
        created_at=float(row["created_at"]),
        secret_hash=row["secret_hash"],
        allowed_scopes=_scopes_from_text(row["allowed_scopes"]),
    )


def _scopes_from_text(text: str | None) -> tuple[str, ...] | None:
    """The stored form of ``allowed_scopes`` (space-separated; NULL stays None)."""
    return None if text is None else tuple(text.split())


class SqlClientStore:
    """Clients keyed by ``id``; only the SHA-256 of a secret is stored."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, client: Client) -> None:
        values = {
            "id": client.id,
            "name": client.name,
            "confidential": client.confidential,
            "secret_hash": client.secret_hash,
            "created_at": client.created_at,
            "allowed_scopes": (
                None if client.allowed_scopes is None else " ".join(client.allowed_scopes)
            ),
        }
        try:
            async with connect(self._engine, write=True) as connection:
                await connection.execute(oauth_clients.insert().values(**values))
        except sa_exc.IntegrityError:
            raise AlreadyExists(f"client {client.id!r} already exists") from None

    async def get(self, client_id: str) -> Client | None:
        query = sa.select(oauth_clients).where(oauth_clients.c.id == client_id)
        async with connect(self._engine) as connection:
            row = (await connection.execute(query)).mappings().first()
        return _from_row(row) if row is not None else None

    async def list(self) -> list[Client]:
        query = sa.select(oauth_clients).order_by(oauth_clients.c.created_at, oauth_clients.c.id)
        async with connect(self._engine) as connection:
            result = await connection.execute(query)
            return [_from_row(row) for row in result.mappings()]
