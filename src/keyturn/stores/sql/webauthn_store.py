"""WebAuthn on SQL: ceremony challenges (``webauthn_challenges``) and passkeys
(``webauthn_credentials``), the last two stores of :mod:`keyturn.mfa.store`.

Split from :mod:`.mfa_store` (which re-exports them) to keep modules small. A
challenge is spent by one ``DELETE ... RETURNING`` (single use, atomic). A new
credential is ``INSERT ... ON CONFLICT DO NOTHING`` on its id, so two
registrations of one id cannot both succeed; credentials are deleted with
their user (``ON DELETE CASCADE``).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from keyturn.mfa.store import PasskeyCredential, WebAuthnChallenge
from keyturn.stores.sql.dialects import (
    dump_strings,
    insert_for,
    load_strings,
    raise_for_integrity,
)
from keyturn.stores.sql.engine import connect
from keyturn.stores.sql.schema import webauthn_challenges, webauthn_credentials

__all__ = ["SqlPasskeyStore", "SqlWebAuthnChallengeStore"]

_creds = webauthn_credentials


def _credential_from_row(row: sa.RowMapping) -> PasskeyCredential:
    last_used = row["last_used_at"]
    return PasskeyCredential(
        id=bytes(row["id"]),
        user_id=row["user_id"],
        public_key=bytes(row["public_key"]),
        sign_count=int(row["sign_count"]),
        name=row["name"],
        created_at=float(row["created_at"]),
        last_used_at=None if last_used is None else float(last_used),
        transports=load_strings(row["transports"]),
        backup_eligible=bool(row["backup_eligible"]),
        backed_up=bool(row["backed_up"]),
        aaguid=row["aaguid"],
        attachment=row["attachment"],
    )


class SqlPasskeyStore:
    """Credentials keyed by credential id, indexed by user."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def __repr__(self) -> str:
        return "SqlPasskeyStore()"

    async def add(self, credential: PasskeyCredential) -> bool:
        """Store a new credential; False if the id is taken.

        Raises:
            UserNotFound: ``credential.user_id`` is not a user.
        """
        values = {
            "id": credential.id,
            "user_id": credential.user_id,
            "public_key": credential.public_key,
            "sign_count": credential.sign_count,
            "name": credential.name,
            "created_at": credential.created_at,
            "last_used_at": credential.last_used_at,
            "transports": dump_strings(credential.transports),
            "backup_eligible": credential.backup_eligible,
            "backed_up": credential.backed_up,
            "aaguid": credential.aaguid,
            "attachment": credential.attachment,
        }
        insert = insert_for(self._engine, _creds).values(**values).on_conflict_do_nothing()
        try:
            async with connect(self._engine, write=True) as connection:
                result = await connection.execute(insert)
        except sa_exc.IntegrityError:
            await raise_for_integrity(self._engine, credential.user_id)
        return result.rowcount == 1

    async def get(self, credential_id: bytes) -> PasskeyCredential | None:
        query = sa.select(_creds).where(_creds.c.id == credential_id)
        async with connect(self._engine) as connection:
            row = (await connection.execute(query)).mappings().first()
        return None if row is None else _credential_from_row(row)

    async def list_for_user(self, user_id: str) -> list[PasskeyCredential]:
        query = (
            sa.select(_creds)
            .where(_creds.c.user_id == user_id)
            .order_by(_creds.c.created_at, _creds.c.id)
        )
        async with connect(self._engine) as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [_credential_from_row(row) for row in rows]

    async def record_use(
        self, credential_id: bytes, *, sign_count: int, used_at: float, backed_up: bool
    ) -> None:
        statement = (
            _creds.update()
            .where(_creds.c.id == credential_id)
            .values(sign_count=sign_count, last_used_at=used_at, backed_up=backed_up)
        )
        async with connect(self._engine, write=True) as connection:
            await connection.execute(statement)

    async def delete(self, user_id: str, credential_id: bytes) -> bool:
        statement = _creds.delete().where(_creds.c.id == credential_id, _creds.c.user_id == user_id)
        async with connect(self._engine, write=True) as connection:
            result = await connection.execute(statement)
        return result.rowcount == 1

    async def delete_all(self, user_id: str) -> int:
        statement = _creds.delete().where(_creds.c.user_id == user_id)
        async with connect(self._engine, write=True) as connection:
            return int((await connection.execute(statement)).rowcount)


class SqlWebAuthnChallengeStore:
    """Single-use ceremony challenges in ``webauthn_challenges``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    def __repr__(self) -> str:
        return "SqlWebAuthnChallengeStore()"

    async def add(self, challenge: WebAuthnChallenge) -> None:
        values = {
            "challenge_hash": challenge.challenge_hash,
            "purpose": challenge.purpose,
            "user_id": challenge.user_id,
            "require_uv": challenge.require_user_verification,
            "created_at": challenge.created_at,
            "expires_at": challenge.expires_at,
        }
        try:
            async with connect(self._engine, write=True) as connection:
                await connection.execute(webauthn_challenges.insert().values(**values))
        except sa_exc.IntegrityError:
            await raise_for_integrity(self._engine, challenge.user_id)

    async def consume(self, challenge_hash: str, now: float) -> WebAuthnChallenge | None:
        statement = (
            webauthn_challenges.delete()
            .where(webauthn_challenges.c.challenge_hash == challenge_hash)
            .returning(*webauthn_challenges.c)
        )
        async with connect(self._engine, write=True) as connection:
            row = (await connection.execute(statement)).mappings().first()
        if row is None or now >= float(row["expires_at"]):
            return None
        return WebAuthnChallenge(
            challenge_hash=row["challenge_hash"],
            purpose=row["purpose"],
            user_id=row["user_id"],
            require_user_verification=bool(row["require_uv"]),
            created_at=float(row["created_at"]),
            expires_at=float(row["expires_at"]),
        )

    async def purge(self, now: float) -> int:
        """Delete every expired challenge (maintenance); return how many."""
        statement = webauthn_challenges.delete().where(webauthn_challenges.c.expires_at <= now)
        async with connect(self._engine, write=True) as connection:
            return int((await connection.execute(statement)).rowcount)
