"""The authorization-code flow stores of :mod:`keyturn.oauth.store` on SQL.

Single use is the compare-and-set the Protocols define: ``UPDATE ... SET
used_at = :now WHERE key = :k AND used_at IS NULL``, won by the one caller whose
statement changed a row (on PostgreSQL a concurrent second ``UPDATE`` waits for
the first's row lock, re-checks ``used_at IS NULL`` and matches nothing; SQLite
runs one writer at a time). A consent is one ``INSERT ... ON CONFLICT DO
UPDATE``. Only hashes of codes and ``request_uri``\\ s are stored; codes and
consents are deleted with their user (``ON DELETE CASCADE``).
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from keyturn.oauth.store import AuthorizationCode, ConsentGrant, PushedRequest
from keyturn.stores.sql.dialects import (
    SqlStore,
    dump_strings,
    insert_for,
    load_strings,
    optional_float,
    raise_for_integrity,
)
from keyturn.stores.sql.engine import connect
from keyturn.stores.sql.schema import oauth_codes, oauth_consents, oauth_par_requests

__all__ = ["SqlCodeStore", "SqlConsentStore", "SqlPushedRequestStore"]


class _SqlStore(SqlStore):
    """The shared checks of the code-flow stores."""

    async def _exists(self, column: sa.Column[str], key: str) -> bool:
        async with connect(self._engine) as connection:
            return (
                await connection.execute(sa.select(column).where(column == key))
            ).first() is not None

    async def _mark_used(
        self, column: sa.Column[str], used: sa.Column[float], key: str, now: float
    ) -> bool:
        statement = column.table.update().where(column == key, used.is_(None)).values({used: now})
        async with connect(self._engine, write=True) as connection:
            result = await connection.execute(statement)
        return result.rowcount == 1

    async def _purge(self, expires: sa.Column[float], expired_before: float) -> int:
        async with connect(self._engine, write=True) as connection:
            result = await connection.execute(
                expires.table.delete().where(expires < expired_before)
            )
        return int(result.rowcount)


def _code_from_row(row: sa.RowMapping) -> AuthorizationCode:
    return AuthorizationCode(
        code_hash=row["code_hash"],
        grant_id=row["grant_id"],
        client_id=row["client_id"],
        user_id=row["user_id"],
        redirect_uri=row["redirect_uri"],
        code_challenge=row["code_challenge"],
        scopes=load_strings(row["scopes"]),
        session_id=row["session_id"],
        auth_time=float(row["auth_time"]),
        created_at=float(row["created_at"]),
        expires_at=float(row["expires_at"]),
        nonce=row["nonce"],
        amr=load_strings(row["amr"]),
        used_at=optional_float(row["used_at"]),
        family_id=row["family_id"],
    )


class SqlCodeStore(_SqlStore):
    """Authorization codes in ``oauth_codes``, keyed by ``code_hash``."""

    async def add(self, code: AuthorizationCode) -> None:
        """Store a new code.

        Raises:
            ValueError: a code with this hash (or grant id) exists.
            UserNotFound: ``code.user_id`` is not a user.
            StoreUnavailable: the database cannot be reached.
        """
        values = {
            "code_hash": code.code_hash,
            "grant_id": code.grant_id,
            "client_id": code.client_id,
            "user_id": code.user_id,
            "redirect_uri": code.redirect_uri,
            "code_challenge": code.code_challenge,
            "scopes": dump_strings(code.scopes),
            "nonce": code.nonce,
            "session_id": code.session_id,
            "auth_time": code.auth_time,
            "amr": dump_strings(code.amr),
            "created_at": code.created_at,
            "expires_at": code.expires_at,
            "used_at": code.used_at,
            "family_id": code.family_id,
        }
        try:
            async with connect(self._engine, write=True) as connection:
                await connection.execute(oauth_codes.insert().values(**values))
        except sa_exc.IntegrityError:
            if await self._exists(oauth_codes.c.code_hash, code.code_hash) or await self._exists(
                oauth_codes.c.grant_id, code.grant_id
            ):
                raise ValueError("duplicate authorization code") from None
            await raise_for_integrity(self._engine, code.user_id)

    async def get(self, code_hash: str) -> AuthorizationCode | None:
        query = sa.select(oauth_codes).where(oauth_codes.c.code_hash == code_hash)
        async with connect(self._engine) as connection:
            row = (await connection.execute(query)).mappings().first()
        return None if row is None else _code_from_row(row)

    async def consume(self, code_hash: str, now: float) -> bool:
        return await self._mark_used(oauth_codes.c.code_hash, oauth_codes.c.used_at, code_hash, now)

    async def set_family(self, code_hash: str, family_id: str) -> None:
        statement = (
            oauth_codes.update()
            .where(oauth_codes.c.code_hash == code_hash, oauth_codes.c.used_at.is_not(None))
            .values(family_id=family_id)
        )
        async with connect(self._engine, write=True) as connection:
            await connection.execute(statement)

    async def purge(self, expired_before: float) -> int:
        return await self._purge(oauth_codes.c.expires_at, expired_before)


class SqlPushedRequestStore(_SqlStore):
    """PAR requests in ``oauth_par_requests``, keyed by ``request_uri_hash``."""

    async def add(self, request: PushedRequest) -> None:
        """Store a new pushed request.

        Raises:
            ValueError: one with this hash exists.
            StoreUnavailable: the database cannot be reached.
        """
        values = {
            "request_uri_hash": request.request_uri_hash,
            "client_id": request.client_id,
            "params": json.dumps(dict(request.params), separators=(",", ":")),
            "created_at": request.created_at,
            "expires_at": request.expires_at,
            "used_at": request.used_at,
        }
        try:
            async with connect(self._engine, write=True) as connection:
                await connection.execute(oauth_par_requests.insert().values(**values))
        except sa_exc.IntegrityError:
            raise ValueError("duplicate request_uri") from None

    async def get(self, request_uri_hash: str) -> PushedRequest | None:
        query = sa.select(oauth_par_requests).where(
            oauth_par_requests.c.request_uri_hash == request_uri_hash
        )
        async with connect(self._engine) as connection:
            row = (await connection.execute(query)).mappings().first()
        if row is None:
            return None
        params = json.loads(row["params"])
        return PushedRequest(
            request_uri_hash=row["request_uri_hash"],
            client_id=row["client_id"],
            params={str(key): str(value) for key, value in params.items()},
            created_at=float(row["created_at"]),
            expires_at=float(row["expires_at"]),
            used_at=optional_float(row["used_at"]),
        )

    async def consume(self, request_uri_hash: str, now: float) -> bool:
        return await self._mark_used(
            oauth_par_requests.c.request_uri_hash,
            oauth_par_requests.c.used_at,
            request_uri_hash,
            now,
        )

    async def purge(self, expired_before: float) -> int:
        return await self._purge(oauth_par_requests.c.expires_at, expired_before)


def _grant_from_row(row: sa.RowMapping) -> ConsentGrant:
    return ConsentGrant(
        user_id=row["user_id"],
        client_id=row["client_id"],
        scopes=frozenset(load_strings(row["scopes"])),
        granted_at=float(row["granted_at"]),
        updated_at=float(row["updated_at"]),
    )


class SqlConsentStore(_SqlStore):
    """Consent grants in ``oauth_consents``, keyed by ``(user_id, client_id)``."""

    def _key(self, user_id: str, client_id: str) -> sa.ColumnElement[bool]:
        return sa.and_(oauth_consents.c.user_id == user_id, oauth_consents.c.client_id == client_id)

    async def get(self, user_id: str, client_id: str) -> ConsentGrant | None:
        query = sa.select(oauth_consents).where(self._key(user_id, client_id))
        async with connect(self._engine) as connection:
            row = (await connection.execute(query)).mappings().first()
        return None if row is None else _grant_from_row(row)

    async def put(self, grant: ConsentGrant) -> None:
        """Create or replace the grant.

        Raises:
            UserNotFound: ``grant.user_id`` is not a user.
        """
        insert = insert_for(self._engine, oauth_consents).values(
            user_id=grant.user_id,
            client_id=grant.client_id,
            scopes=dump_strings(sorted(grant.scopes)),
            granted_at=grant.granted_at,
            updated_at=grant.updated_at,
        )
        upsert = insert.on_conflict_do_update(
            index_elements=[oauth_consents.c.user_id, oauth_consents.c.client_id],
            set_={key: insert.excluded[key] for key in ("scopes", "granted_at", "updated_at")},
        )
        try:
            async with connect(self._engine, write=True) as connection:
                await connection.execute(upsert)
        except sa_exc.IntegrityError:
            await raise_for_integrity(self._engine, grant.user_id)

    async def delete(self, user_id: str, client_id: str) -> ConsentGrant | None:
        statement = (
            oauth_consents.delete()
            .where(self._key(user_id, client_id))
            .returning(*oauth_consents.c)
        )
        async with connect(self._engine, write=True) as connection:
            row = (await connection.execute(statement)).mappings().first()
        return None if row is None else _grant_from_row(row)

    async def list_for_user(self, user_id: str) -> list[ConsentGrant]:
        query = (
            sa.select(oauth_consents)
            .where(oauth_consents.c.user_id == user_id)
            .order_by(oauth_consents.c.granted_at, oauth_consents.c.client_id)
        )
        async with connect(self._engine) as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [_grant_from_row(row) for row in rows]

    async def delete_for_client(self, client_id: str) -> int:
        statement = oauth_consents.delete().where(oauth_consents.c.client_id == client_id)
        async with connect(self._engine, write=True) as connection:
            return int((await connection.execute(statement)).rowcount)
