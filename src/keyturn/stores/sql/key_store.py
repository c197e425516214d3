"""Token signing keys in the ``signing_keys`` table.

The ``private_key`` column holds what :class:`~keyturn.keys.encryption.KeyEncryptor` sealed;
this store never sees plaintext key material.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from keyturn.errors import AlreadyExists
from keyturn.keys.records import ALGORITHMS, SigningKey
from keyturn.stores.sql.engine import connect
from keyturn.stores.sql.schema import signing_keys


def _key_from_row(row: sa.RowMapping) -> SigningKey:
    alg = row["alg"]
    if alg not in ALGORITHMS:
        raise ValueError(f"signing key {row['kid']!r} has unknown algorithm {alg!r}")
    return SigningKey(
        kid=row["kid"],
        alg=alg,
        private_key=bytes(row["private_key"]),
        public_jwk=json.loads(row["public_jwk"]),
        created_at=float(row["created_at"]),
        retired_at=None if row["retired_at"] is None else float(row["retired_at"]),
    )


class SqlKeyStore:
    """Signing keys keyed by ``kid``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, key: SigningKey) -> None:
        values = {
            "kid": key.kid,
            "alg": key.alg,
            "private_key": key.private_key,
            "public_jwk": json.dumps(dict(key.public_jwk), sort_keys=True),
            "created_at": key.created_at,
            "retired_at": key.retired_at,
        }
        try:
            async with connect(self._engine, write=True) as connection:
                await connection.execute(signing_keys.insert().values(**values))
        except sa_exc.IntegrityError:
            raise AlreadyExists(f"signing key {key.kid!r} already exists") from None

    async def list(self) -> list[SigningKey]:
        query = sa.select(signing_keys).order_by(
            signing_keys.c.created_at.desc(), signing_keys.c.kid.desc()
        )
        async with connect(self._engine) as connection:
            result = await connection.execute(query)
            return [_key_from_row(row) for row in result.mappings()]

    async def retire(self, kid: str, at: float) -> None:
        # One conditional UPDATE: an earlier retirement time always wins.
        statement = (
            signing_keys.update()
            .where(signing_keys.c.kid == kid)
            .where(sa.or_(signing_keys.c.retired_at.is_(None), signing_keys.c.retired_at > at))
            .values(retired_at=at)
        )
        async with connect(self._engine, write=True) as connection:
            await connection.execute(statement)

    async def delete_expired(self, before: float) -> int:
        statement = signing_keys.delete().where(
            signing_keys.c.retired_at.is_not(None), signing_keys.c.retired_at < before
        )
        async with connect(self._engine, write=True) as connection:
            result = await connection.execute(statement)
            return int(result.rowcount)
