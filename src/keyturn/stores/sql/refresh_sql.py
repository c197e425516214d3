"""The refresh grant's two store calls as plain SQL (:mod:`keyturn.stores.sql.direct`).

Every refresh reads the presented token with its family, then rotates it. Both
are constant statements with bound parameters:

* the read: one ``SELECT`` of the token joined to its family;
* the rotation, the compare-and-set that makes exactly one caller win: mark the
  token used ``WHERE used_at IS NULL`` and its family is not revoked, and only
  if that matched, insert the successor and touch the family. On SQLite the
  three statements are one transaction in one thread hop; on PostgreSQL they
  are **one statement** (data-modifying ``WITH``), one round trip in
  autocommit. A concurrent second rotation of the same token waits for the
  first one's row lock and then matches nothing, on either database, so the
  contract of :meth:`~keyturn.stores.protocols.RefreshStore.rotate` holds across
  any number of instances.
"""

from __future__ import annotations

from typing import Any

from keyturn.stores.records import RefreshFamily, RefreshToken
from keyturn.stores.sql.direct import PostgresDirect, Row, SqliteDirect

__all__ = ["read_token", "rotate_token"]

_READ = (
    "SELECT t.token_hash, t.family_id, t.issued_at, t.expires_at, t.used_at,"
    " t.grace_until, t.grace_payload,"
    " f.id, f.user_id, f.client_id, f.scope, f.created_at, f.last_used_at, f.expires_at,"
    " f.ip, f.user_agent, f.revoked_at, f.session_id, f.dpop_jkt"
    " FROM refresh_tokens AS t JOIN refresh_families AS f ON f.id = t.family_id"
    " WHERE t.token_hash = ?"
)

# SQLite: three statements, one transaction (sqlite3 opens it at the UPDATE).
_MARK_USED = (
    "UPDATE refresh_tokens SET used_at = ?, grace_until = ?, grace_payload = ?"
    " WHERE token_hash = ? AND used_at IS NULL AND EXISTS (SELECT 1 FROM refresh_families AS f"
    " WHERE f.id = refresh_tokens.family_id AND f.revoked_at IS NULL)"
)
_INSERT = (
    "INSERT INTO refresh_tokens"
    " (token_hash, family_id, issued_at, expires_at, used_at, grace_until, grace_payload)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_TOUCH = (
    "UPDATE refresh_families"
    " SET last_used_at = CASE WHEN last_used_at < ? THEN ? ELSE last_used_at END,"
    " ip = COALESCE(?, ip), user_agent = COALESCE(?, user_agent)"
    " WHERE id = ?"
)

# PostgreSQL: the same three changes as one statement; a row back when it rotated.
_ROTATE_PG = (
    "WITH claimed AS ("
    " UPDATE refresh_tokens SET used_at = ?::float8, grace_until = ?::float8,"
    " grace_payload = ?::bytea"
    " WHERE token_hash = ? AND used_at IS NULL AND EXISTS (SELECT 1 FROM refresh_families AS f"
    " WHERE f.id = refresh_tokens.family_id AND f.revoked_at IS NULL)"
    " RETURNING family_id"
    "), successor AS ("
    " INSERT INTO refresh_tokens"
    " (token_hash, family_id, issued_at, expires_at, used_at, grace_until, grace_payload)"
    " SELECT ?::text, ?::text, ?::float8, ?::float8, ?::float8, ?::float8, ?::bytea"
    " FROM claimed"
    ")"
    " UPDATE refresh_families"
    " SET last_used_at = CASE WHEN last_used_at < ?::float8 THEN ?::float8"
    " ELSE last_used_at END,"
    " ip = COALESCE(?::text, ip), user_agent = COALESCE(?::text, user_agent)"
    " WHERE id = ?::text AND EXISTS (SELECT 1 FROM claimed)"
    " RETURNING id"
)


async def read_token(
    direct: SqliteDirect | PostgresDirect, token_hash: str
) -> tuple[RefreshToken, RefreshFamily] | None:
    """The token with this hash and its family, or None (one statement).

    Raises:
        StoreUnavailable: the database cannot be reached.
    """
    row = await direct.read_one(_READ, (token_hash,))
    return None if row is None else _records(row)


async def rotate_token(
    direct: SqliteDirect | PostgresDirect,
    token_hash: str,
    successor: RefreshToken,
    *,
    now: float,
    grace_until: float | None,
    grace_payload: bytes | None,
    ip: str | None,
    user_agent: str | None,
) -> bool:
    """:meth:`~keyturn.stores.protocols.RefreshStore.rotate`, atomically.

    Raises:
        StoreUnavailable: the database cannot be reached.
    """
    used = (now, grace_until, grace_payload, token_hash)
    inserted = (
        successor.token_hash,
        successor.family_id,
        successor.issued_at,
        successor.expires_at,
        successor.used_at,
        successor.grace_until,
        successor.grace_payload,
    )
    touched = (now, now, ip, user_agent, successor.family_id)
    if isinstance(direct, PostgresDirect):
        return await direct.fetch_one(_ROTATE_PG, used + inserted + touched) is not None

    def rotate(connection: Any) -> bool:
        cursor = connection.cursor()
        try:
            cursor.execute(_MARK_USED, used)
            if cursor.rowcount != 1:
                connection.rollback()
                return False
            cursor.execute(_INSERT, inserted)
            cursor.execute(_TOUCH, touched)
            connection.commit()
            return True
        except BaseException:
            connection.rollback()
            raise
        finally:
            cursor.close()

    return await direct.run(rotate)


def _records(row: Row) -> tuple[RefreshToken, RefreshFamily]:
    token = RefreshToken(
        token_hash=row[0],
        family_id=row[1],
        issued_at=float(row[2]),
        expires_at=float(row[3]),
        used_at=_opt_float(row[4]),
        grace_until=_opt_float(row[5]),
        grace_payload=None if row[6] is None else bytes(row[6]),
    )
    family = RefreshFamily(
        id=row[7],
        user_id=row[8],
        client_id=row[9],
        scope=row[10],
        created_at=float(row[11]),
        last_used_at=float(row[12]),
        expires_at=float(row[13]),
        ip=row[14],
        user_agent=row[15],
        revoked_at=_opt_float(row[16]),
        session_id=row[17],
        dpop_jkt=row[18],
    )
    return token, family


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)
