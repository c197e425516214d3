"""Browser sessions in Redis (see the package docstring for the key layout).

(Over 300 lines: one store; its Lua scripts are already apart in
:mod:`.session_scripts`.)

Everything about one user's sessions lives under the hash tag ``{u:<user_id>}``:
one hash per session and a sorted set indexing them by age. Every write that
touches more than one of those keys is one Lua script on that slot, so it is
atomic (the per-user cap included) and works on Redis Cluster. The lookups by
``id_hash`` and by ``handle`` go through small pointer keys that name the user;
a pointer is written before the session and deleted after it, so a pointer
without a session (a crash in between, or Redis expiring one before the
other) only ever reads as "no such session".

Key TTLs let Redis drop dead sessions by itself: a session hash lives until its
idle or absolute deadline (whichever comes first, moved on by :meth:`touch`)
plus :data:`TTL_GRACE` seconds; the pointers until the absolute deadline plus
the grace. TTLs are relative to the caller's "now", so a clock difference
between keyturn and Redis does not shorten or lengthen a session. :meth:`sweep`
still deletes by the stored times, exactly like the SQL store.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from urllib.parse import quote

from keyturn.stores.records import Session
from keyturn.stores.redis import session_scripts as scripts
from keyturn.stores.redis.connection import KEY_PREFIX, RedisConnection, text

__all__ = [
    "TTL_GRACE",
    "USERS_KEY",
    "RedisSessionStore",
    "handle_key",
    "id_key",
    "index_key",
    "session_key",
    "user_tag",
]

#: Seconds Redis keeps a session past its stored deadline before its TTL drops
#: it: a margin for activity not yet written (``session_touch_interval``, 60 s
#: by default) and for slow requests. The sweep deletes at the deadline itself.
TTL_GRACE = 120.0

#: Users handled per pipeline by :meth:`RedisSessionStore.sweep` and ``list_all``.
_BATCH = 200

#: The index of users that have (or recently had) sessions: user id -> the
#: latest absolute expiry of their sessions. Used by ``list_all`` and ``sweep``.
USERS_KEY = f"{KEY_PREFIX}session-users"


def user_tag(user_id: str) -> str:
    """The hash tag of a user's keys: ``{u:<user_id>}`` (percent-encoded, so a
    ``}`` in an id cannot end the tag early)."""
    return "{u:" + quote(user_id, safe="") + "}"


def _user_prefix(user_id: str) -> str:
    return f"{KEY_PREFIX}{user_tag(user_id)}:"


def index_key(user_id: str) -> str:
    """The sorted set of a user's session hashes, scored by ``created_at``."""
    return _user_prefix(user_id) + "sessions"


def session_key(user_id: str, id_hash: str) -> str:
    """The hash holding one session's fields."""
    return _user_prefix(user_id) + "s:" + id_hash


def id_key(id_hash: str) -> str:
    """The pointer from a session's ``id_hash`` to its user."""
    return f"{KEY_PREFIX}sid:{id_hash}"


def handle_key(handle: str) -> str:
    """The pointer from a session's public handle to its user and ``id_hash``."""
    return f"{KEY_PREFIX}sh:{handle}"


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def _session_ttl(session: Session, now: float) -> int:
    deadline = session.ends_at
    return _ms(max(0.0, deadline - now) + TTL_GRACE)


def _pointer_ttl(session: Session, now: float) -> int:
    return _ms(max(0.0, session.expires_at - now) + TTL_GRACE)


def _encode(session: Session) -> list[str]:
    """Field/value pairs for HSET; floats as ``repr`` (exact round trip),
    absent optional fields left out."""
    fields = [
        "id_hash",
        session.id_hash,
        "handle",
        session.handle,
        "user_id",
        session.user_id,
        "created_at",
        repr(session.created_at),
        "last_seen_at",
        repr(session.last_seen_at),
        "idle_timeout",
        str(session.idle_timeout),
        "expires_at",
        repr(session.expires_at),
        "auth_time",
        repr(session.auth_time),
        "remember",
        "1" if session.remember else "0",
        "amr",
        " ".join(session.amr),
    ]
    if session.ip is not None:
        fields += ["ip", session.ip]
    if session.user_agent is not None:
        fields += ["user_agent", session.user_agent]
    return fields


def _decode(flat: Sequence[str]) -> Session:
    """A session from a flat HGETALL reply (as Lua returns it)."""
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    return Session(
        id_hash=fields["id_hash"],
        handle=fields["handle"],
        user_id=fields["user_id"],
        created_at=float(fields["created_at"]),
        last_seen_at=float(fields["last_seen_at"]),
        idle_timeout=int(fields["idle_timeout"]),
        expires_at=float(fields["expires_at"]),
        auth_time=float(fields["auth_time"]),
        remember=fields["remember"] == "1",
        ip=fields.get("ip"),
        user_agent=fields.get("user_agent"),
        amr=tuple(fields.get("amr", "pwd").split()),
    )


def _decode_all(replies: Iterable[Sequence[str]]) -> list[Session]:
    return [_decode(flat) for flat in replies if flat]


def _age_order(session: Session) -> tuple[float, str]:
    return (session.created_at, session.id_hash)


class RedisSessionStore:
    """:class:`~keyturn.stores.protocols.SessionStore` on Redis.

    Unlike the SQL store it does not check that the user exists (users live in
    SQL); a session of an unknown user is simply never validated.
    """

    def __init__(self, connection: RedisConnection) -> None:
        self._redis = connection
        self._client = connection.client
        self._create = connection.script(scripts.CREATE)
        self._touch = connection.script(scripts.TOUCH)
        self._delete = connection.script(scripts.DELETE)
        self._delete_for_user = connection.script(scripts.DELETE_FOR_USER)
        self._list = connection.script(scripts.LIST)
        self._sweep = connection.script(scripts.SWEEP)

    async def create(self, session: Session, *, max_per_user: int) -> list[Session]:
        now = session.last_seen_at
        user = session.user_id
        pointer_ttl = _pointer_ttl(session, now)
        with self._redis.errors():
            # Pointers (each in its own slot) first: until the script below has
            # run they point at nothing, which reads as "no such session".
            async with self._client.pipeline(transaction=False) as pipe:
                pipe.set(id_key(session.id_hash), user, px=pointer_ttl)
                pipe.set(
                    handle_key(session.handle), json.dumps([user, session.id_hash]), px=pointer_ttl
                )
                pipe.zadd(USERS_KEY, {user: session.expires_at}, gt=True)
                await pipe.execute()
            replies = await self._create(
                keys=[index_key(user), session_key(user, session.id_hash)],
                args=[
                    _user_prefix(user) + "s:",
                    session.id_hash,
                    repr(session.created_at),
                    repr(now),
                    max_per_user,
                    _session_ttl(session, now),
                    *_encode(session),
                ],
            )
            evicted = _decode_all(replies)
            await self._drop_pointers(evicted)
        return evicted

    async def get(self, id_hash: str) -> Session | None:
        with self._redis.errors():
            user = await self._owner(id_hash)
            if user is None:
                return None
            return await self._read(user, id_hash)

    async def get_by_handle(self, handle: str) -> Session | None:
        with self._redis.errors():
            pointer = await self._client.get(handle_key(handle))
            if pointer is None:
                return None
            user, id_hash = json.loads(text(pointer))
            session = await self._read(user, id_hash)
        return session if session is not None and session.handle == handle else None

    async def _owner(self, id_hash: str) -> str | None:
        """The user a session's pointer names, or None."""
        user = await self._client.get(id_key(id_hash))
        return None if user is None else text(user)

    async def _read(self, user: str, id_hash: str) -> Session | None:
        fields = await self._client.hgetall(session_key(user, id_hash))
        if not fields:
            return None
        return _decode([text(item) for pair in fields.items() for item in pair])

    async def touch(self, id_hash: str, last_seen_at: float) -> None:
        with self._redis.errors():
            user = await self._owner(id_hash)
            if user is None:
                return
            await self._touch(
                keys=[index_key(user), session_key(user, id_hash)],
                args=[repr(last_seen_at), _ms(TTL_GRACE)],
            )

    async def delete(self, id_hash: str) -> Session | None:
        with self._redis.errors():
            user = await self._owner(id_hash)
            if user is None:
                return None
            reply = await self._delete(
                keys=[index_key(user), session_key(user, id_hash)], args=[id_hash]
            )
            if not reply:
                return None
            session = _decode(reply)
            await self._drop_pointers([session])
        return session

    async def delete_for_user(
        self, user_id: str, *, keep_id_hash: str | None = None
    ) -> list[Session]:
        with self._redis.errors():
            replies = await self._delete_for_user(
                keys=[index_key(user_id)],
                args=[_user_prefix(user_id) + "s:", keep_id_hash or ""],
            )
            deleted = _decode_all(replies)
            await self._drop_pointers(deleted)
        return sorted(deleted, key=_age_order)

    async def list_for_user(self, user_id: str) -> list[Session]:
        with self._redis.errors():
            replies = await self._list(
                keys=[index_key(user_id)], args=[_user_prefix(user_id) + "s:"]
            )
        return sorted(_decode_all(replies), key=_age_order)

    async def list_all(self) -> list[Session]:
        found: list[Session] = []
        with self._redis.errors():
            users = [text(user) for user in await self._client.zrange(USERS_KEY, 0, -1)]
            for start in range(0, len(users), _BATCH):
                async with self._client.pipeline(transaction=False) as pipe:
                    for user in users[start : start + _BATCH]:
                        await self._list(
                            keys=[index_key(user)], args=[_user_prefix(user) + "s:"], client=pipe
                        )
                    for replies in await pipe.execute():
                        found += _decode_all(replies)
        return sorted(found, key=_age_order)

    async def sweep(self, now: float) -> int:
        deleted = 0
        with self._redis.errors():
            users = [text(user) for user in await self._client.zrange(USERS_KEY, 0, -1)]
            for start in range(0, len(users), _BATCH):
                async with self._client.pipeline(transaction=False) as pipe:
                    for user in users[start : start + _BATCH]:
                        await self._sweep(
                            keys=[index_key(user)],
                            args=[_user_prefix(user) + "s:", repr(now)],
                            client=pipe,
                        )
                    gone: list[str] = [item for reply in await pipe.execute() for item in reply]
                deleted += len(gone) // 2
                await self._unlink(
                    [id_key(gone[i]) for i in range(0, len(gone), 2)]
                    + [handle_key(gone[i]) for i in range(1, len(gone), 2)]
                )
            # A user scored <= now has only sessions past their absolute expiry,
            # which the loop above deleted; a sign-in since then raised the score.
            await self._client.zremrangebyscore(USERS_KEY, "-inf", repr(now))
        return deleted

    async def _drop_pointers(self, sessions: Sequence[Session]) -> None:
        await self._unlink(
            [id_key(s.id_hash) for s in sessions] + [handle_key(s.handle) for s in sessions]
        )

    async def _unlink(self, keys: Sequence[str]) -> None:
        """Delete pointer keys, one command each (they live in different slots)."""
        if not keys:
            return
        async with self._client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.unlink(key)
            await pipe.execute()
