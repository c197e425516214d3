"""Account tokens in ``account_tokens``: :class:`~keyturn.recovery.store.AccountTokenStore`
on SQL.

Issuing is a delete of the user's tokens of that purpose and an insert in one
transaction (the newer request wins); redeeming is one ``DELETE ... WHERE
token_hash = :h AND purpose = :p AND expires_at > :now RETURNING``, so a token
is used once even when two requests race (SQLite and PostgreSQL alike).
"""

from __future__ import annotations

from keyturn.recovery.store import AccountToken, TokenPurpose
from keyturn.stores.sql.dialects import SqlStore
from keyturn.stores.sql.engine import connect
from keyturn.stores.sql.schema import account_tokens

__all__ = ["SqlAccountTokenStore"]

_tokens = account_tokens


class SqlAccountTokenStore(SqlStore):
    """See :class:`keyturn.recovery.store.AccountTokenStore`."""

    async def issue(self, token: AccountToken) -> None:
        """See :meth:`AccountTokenStore.issue`."""
        async with connect(self._engine, write=True) as connection:
            await connection.execute(
                _tokens.delete().where(
                    _tokens.c.user_id == token.user_id, _tokens.c.purpose == token.purpose.value
                )
            )
            await connection.execute(
                _tokens.insert().values(
                    token_hash=token.token_hash,
                    user_id=token.user_id,
                    purpose=token.purpose.value,
                    new_email=token.new_email,
                    created_at=token.created_at,
                    expires_at=token.expires_at,
                )
            )

    async def redeem(
        self, token_hash: str, purpose: TokenPurpose, *, now: float
    ) -> AccountToken | None:
        """See :meth:`AccountTokenStore.redeem`."""
        statement = (
            _tokens.delete()
            .where(
                _tokens.c.token_hash == token_hash,
                _tokens.c.purpose == purpose.value,
                _tokens.c.expires_at > now,
            )
            .returning(*_tokens.c)
        )
        async with connect(self._engine, write=True) as connection:
            row = (await connection.execute(statement)).mappings().first()
        if row is None:
            return None
        return AccountToken(
            token_hash=row["token_hash"],
            user_id=row["user_id"],
            purpose=TokenPurpose(row["purpose"]),
            created_at=float(row["created_at"]),
            expires_at=float(row["expires_at"]),
            new_email=row["new_email"],
        )

    async def revoke_user(self, user_id: str, purposes: frozenset[TokenPurpose]) -> int:
        """See :meth:`AccountTokenStore.revoke_user`."""
        if not purposes:
            return 0
        statement = _tokens.delete().where(
            _tokens.c.user_id == user_id,
            _tokens.c.purpose.in_(sorted(purpose.value for purpose in purposes)),
        )
        async with connect(self._engine, write=True) as connection:
            result = await connection.execute(statement)
        return int(result.rowcount or 0)

    async def sweep(self, *, now: float) -> int:
        """See :meth:`AccountTokenStore.sweep`."""
        async with connect(self._engine, write=True) as connection:
            result = await connection.execute(_tokens.delete().where(_tokens.c.expires_at <= now))
        return int(result.rowcount or 0)
