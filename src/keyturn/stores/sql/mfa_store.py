"""The multi-factor stores of :mod:`keyturn.mfa.store` on SQL.

Every single-use rule is one conditional statement, never a read then a write:
a recovery code is ``DELETE ... WHERE user_id AND code_hash`` (one row deleted
means this caller used it), an ``mfa_token`` attempt is ``UPDATE ... SET
attempts = attempts + 1 WHERE attempts < :max AND expires_at > :now RETURNING``
(counted before the code is checked, so parallel guesses stay bounded), a
WebAuthn challenge is ``DELETE ... RETURNING``, a TOTP step is ``INSERT ... ON
CONFLICT DO NOTHING`` on its primary key, and activating a TOTP enrolment is a
``DELETE`` of the pending row that still holds the checked secret. On
PostgreSQL a second concurrent statement waits for the first's row lock and
re-checks its ``WHERE``, so it matches nothing; SQLite runs one writer at a
time. Each write transaction starts with its write, so SQLite takes the write
lock before reading anything. Rows are deleted with their user (``ON DELETE
CASCADE``); secrets arrive hashed or sealed and are stored exactly so.
WebAuthn challenges and passkeys are in :mod:`.webauthn_store` (re-exported here).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from keyturn.mfa.store import MfaChallenge, TotpFactor
from keyturn.stores.sql.dialects import (
    SqlStore,
    dump_strings,
    insert_for,
    load_strings,
    optional_float,
    raise_for_integrity,
)
from keyturn.stores.sql.engine import connect
from keyturn.stores.sql.schema import (
    mfa_challenges,
    mfa_recovery_codes,
    mfa_totp,
    mfa_totp_used,
)
from keyturn.stores.sql.webauthn_store import SqlPasskeyStore, SqlWebAuthnChallengeStore

__all__ = [
    "SqlMfaChallengeStore",
    "SqlPasskeyStore",
    "SqlRecoveryCodeStore",
    "SqlTotpReplayStore",
    "SqlTotpStore",
    "SqlWebAuthnChallengeStore",
]

_ACTIVE, _PENDING = "active", "pending"


class SqlTotpStore(SqlStore):
    """Factors in ``mfa_totp``, one row per (user, state)."""

    async def set_pending(self, factor: TotpFactor) -> None:
        values = {
            "user_id": factor.user_id,
            "state": _PENDING,
            "sealed_secret": factor.sealed_secret,
            "created_at": factor.created_at,
            "confirmed_at": factor.confirmed_at,
        }
        insert = insert_for(self._engine, mfa_totp).values(**values)
        upsert = insert.on_conflict_do_update(
            index_elements=[mfa_totp.c.user_id, mfa_totp.c.state],
            set_={key: insert.excluded[key] for key in values if key not in ("user_id", "state")},
        )
        try:
            async with connect(self._engine, write=True) as connection:
                await connection.execute(upsert)
        except sa_exc.IntegrityError:
            await raise_for_integrity(self._engine, factor.user_id)

    async def _get(self, user_id: str, state: str) -> TotpFactor | None:
        query = sa.select(mfa_totp).where(mfa_totp.c.user_id == user_id, mfa_totp.c.state == state)
        async with connect(self._engine) as connection:
            row = (await connection.execute(query)).mappings().first()
        if row is None:
            return None
        return TotpFactor(
            user_id=row["user_id"],
            sealed_secret=bytes(row["sealed_secret"]),
            created_at=float(row["created_at"]),
            confirmed_at=optional_float(row["confirmed_at"]),
        )

    async def get_pending(self, user_id: str) -> TotpFactor | None:
        return await self._get(user_id, _PENDING)

    async def activate(self, user_id: str, sealed_secret: bytes, confirmed_at: float) -> bool:
        take_pending = (
            mfa_totp.delete()
            .where(
                mfa_totp.c.user_id == user_id,
                mfa_totp.c.state == _PENDING,
                mfa_totp.c.sealed_secret == sealed_secret,
            )
            .returning(mfa_totp.c.created_at)
        )
        async with connect(self._engine, write=True) as connection:
            created_at = (await connection.execute(take_pending)).scalar_one_or_none()
            if created_at is None:
                return False
            await connection.execute(
                mfa_totp.delete().where(mfa_totp.c.user_id == user_id, mfa_totp.c.state == _ACTIVE)
            )
            await connection.execute(
                mfa_totp.insert().values(
                    user_id=user_id,
                    state=_ACTIVE,
                    sealed_secret=sealed_secret,
                    created_at=created_at,
                    confirmed_at=confirmed_at,
                )
            )
        return True

    async def get_active(self, user_id: str) -> TotpFactor | None:
        return await self._get(user_id, _ACTIVE)

    async def delete(self, user_id: str) -> bool:
        async with connect(self._engine, write=True) as connection:
            result = await connection.execute(
                mfa_totp.delete().where(mfa_totp.c.user_id == user_id)
            )
        return int(result.rowcount) > 0


class SqlTotpReplayStore(SqlStore):
    """Accepted (user, step) pairs in ``mfa_totp_used``, unique by primary key."""

    async def claim(self, user_id: str, step: int, expires_at: float, now: float) -> bool:
        insert = insert_for(self._engine, mfa_totp_used).values(
            user_id=user_id, step=step, expires_at=expires_at
        )
        try:
            async with connect(self._engine, write=True) as connection:
                await connection.execute(
                    mfa_totp_used.delete().where(
                        mfa_totp_used.c.user_id == user_id, mfa_totp_used.c.expires_at <= now
                    )
                )
                result = await connection.execute(insert.on_conflict_do_nothing())
        except sa_exc.IntegrityError:
            await raise_for_integrity(self._engine, user_id)
        return result.rowcount == 1

    async def purge(self, now: float) -> int:
        """Delete every expired claim (maintenance); return how many."""
        statement = mfa_totp_used.delete().where(mfa_totp_used.c.expires_at <= now)
        async with connect(self._engine, write=True) as connection:
            return int((await connection.execute(statement)).rowcount)


class SqlRecoveryCodeStore(SqlStore):
    """Recovery-code hashes in ``mfa_recovery_codes``, one row per unused code."""

    async def replace(self, user_id: str, code_hashes: Sequence[str], created_at: float) -> None:
        rows = [
            {"user_id": user_id, "code_hash": code_hash, "created_at": created_at}
            for code_hash in dict.fromkeys(code_hashes)
        ]
        try:
            async with connect(self._engine, write=True) as connection:
                await connection.execute(
                    mfa_recovery_codes.delete().where(mfa_recovery_codes.c.user_id == user_id)
                )
                if rows:
                    await connection.execute(mfa_recovery_codes.insert(), rows)
        except sa_exc.IntegrityError:
            await raise_for_integrity(self._engine, user_id)

    async def consume(self, user_id: str, code_hash: str) -> bool:
        statement = mfa_recovery_codes.delete().where(
            mfa_recovery_codes.c.user_id == user_id, mfa_recovery_codes.c.code_hash == code_hash
        )
        async with connect(self._engine, write=True) as connection:
            result = await connection.execute(statement)
        return result.rowcount == 1

    async def remaining(self, user_id: str) -> int:
        query = sa.select(sa.func.count()).where(mfa_recovery_codes.c.user_id == user_id)
        async with connect(self._engine) as connection:
            return int((await connection.execute(query)).scalar_one())

    async def delete(self, user_id: str) -> None:
        statement = mfa_recovery_codes.delete().where(mfa_recovery_codes.c.user_id == user_id)
        async with connect(self._engine, write=True) as connection:
            await connection.execute(statement)


def _challenge_from_row(row: sa.RowMapping) -> MfaChallenge:
    return MfaChallenge(
        token_hash=row["token_hash"],
        user_id=row["user_id"],
        binding_hash=row["binding_hash"],
        methods=load_strings(row["methods"]),
        amr=load_strings(row["amr"]),
        created_at=float(row["created_at"]),
        expires_at=float(row["expires_at"]),
        attempts=int(row["attempts"]),
        payload=row["payload"],
    )


class SqlMfaChallengeStore(SqlStore):
    """Pending second factors in ``mfa_challenges``; expired rows are invisible."""

    async def add(self, challenge: MfaChallenge) -> None:
        values = {
            "token_hash": challenge.token_hash,
            "user_id": challenge.user_id,
            "binding_hash": challenge.binding_hash,
            "methods": dump_strings(challenge.methods),
            "amr": dump_strings(challenge.amr),
            "payload": challenge.payload,
            "attempts": challenge.attempts,
            "created_at": challenge.created_at,
            "expires_at": challenge.expires_at,
        }
        try:
            async with connect(self._engine, write=True) as connection:
                await connection.execute(mfa_challenges.insert().values(**values))
        except sa_exc.IntegrityError:
            await raise_for_integrity(self._engine, challenge.user_id)

    async def get(self, token_hash: str, now: float) -> MfaChallenge | None:
        query = sa.select(mfa_challenges).where(
            mfa_challenges.c.token_hash == token_hash, mfa_challenges.c.expires_at > now
        )
        async with connect(self._engine) as connection:
            row = (await connection.execute(query)).mappings().first()
        return None if row is None else _challenge_from_row(row)

    async def claim_attempt(
        self, token_hash: str, now: float, max_attempts: int
    ) -> MfaChallenge | None:
        count = (
            mfa_challenges.update()
            .where(
                mfa_challenges.c.token_hash == token_hash,
                mfa_challenges.c.expires_at > now,
                mfa_challenges.c.attempts < max_attempts,
            )
            .values(attempts=mfa_challenges.c.attempts + 1)
            .returning(*mfa_challenges.c)
        )
        async with connect(self._engine, write=True) as connection:
            row = (await connection.execute(count)).mappings().first()
            if row is None:  # gone, expired or spent: make sure it is gone
                await connection.execute(
                    mfa_challenges.delete().where(mfa_challenges.c.token_hash == token_hash)
                )
                return None
        return _challenge_from_row(row)

    async def consume(self, token_hash: str, now: float) -> bool:
        statement = mfa_challenges.delete().where(
            mfa_challenges.c.token_hash == token_hash, mfa_challenges.c.expires_at > now
        )
        async with connect(self._engine, write=True) as connection:
            result = await connection.execute(statement)
        return result.rowcount == 1

    async def delete(self, token_hash: str) -> None:
        statement = mfa_challenges.delete().where(mfa_challenges.c.token_hash == token_hash)
        async with connect(self._engine, write=True) as connection:
            await connection.execute(statement)

    async def delete_for_user(self, user_id: str) -> int:
        statement = mfa_challenges.delete().where(mfa_challenges.c.user_id == user_id)
        async with connect(self._engine, write=True) as connection:
            return int((await connection.execute(statement)).rowcount)

    async def purge(self, now: float) -> int:
        """Delete every expired challenge (maintenance); return how many."""
        statement = mfa_challenges.delete().where(mfa_challenges.c.expires_at <= now)
        async with connect(self._engine, write=True) as connection:
            return int((await connection.execute(statement)).rowcount)
