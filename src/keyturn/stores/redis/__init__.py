"""Redis (or Valkey) storage for the fast-changing stores: browser sessions, the
revocation log and the sign-in throttle counters. Needs the ``redis`` extra
(``pip install 'keyturn[redis]'``: redis-py with hiredis).

Key layout. Every key starts with ``keyturn:``. A user's session data shares the
hash tag ``{u:<user_id>}`` (the id percent-encoded), so every multi-key script
works on one Redis Cluster slot; lookups by ``id_hash`` or handle go through
small pointer keys in slots of their own. Only hashes are stored: the session
secret never reaches Redis (``id_hash`` is its SHA-256).

Key (type): what it holds (TTL)::

    keyturn:{u:<user>}:s:<id_hash>   (hash)    one session's fields (idle or absolute
                                               deadline, whichever is first, + 120 s)
    keyturn:{u:<user>}:sessions      (zset)    the user's id_hashes by created_at
                                               (as long as the longest-lived session)
    keyturn:sid:<id_hash>            (string)  pointer: the user id (absolute deadline + 120 s)
    keyturn:sh:<handle>              (string)  pointer: JSON [user id, id_hash] (same)
    keyturn:session-users            (zset)    user ids by latest expires_at, for listing
                                               every session and the sweep (trimmed by it)
    keyturn:{rev}:seq                (string)  the revocation seq counter (INCR)
    keyturn:{rev}:entries            (hash)    seq -> JSON [kind, value, created_at,
                                               expires_at] (no TTL: swept)
    keyturn:{rev}:by-seq             (zset)    seq by seq         (no TTL: swept)
    keyturn:{rev}:by-created         (zset)    seq by created_at  (no TTL: swept)
    keyturn:{rev}:by-expiry          (zset)    seq by expires_at  (no TTL: swept)
    keyturn:throttle:<limits key>    (hash)    {count, expires_at} of one sign-in
                                               failure window (window + 60 s)

Modules: :mod:`.connection` (client, timeouts, errors -> ``StoreUnavailable``),
:mod:`.session_store`, :mod:`.revocation_store`, :mod:`.throttle` and
:mod:`.storage` (the SQL + Redis bundle that ``open_storage`` returns when
``redis_url`` is set).
"""

from keyturn.stores.redis.connection import KEY_PREFIX, RedisConnection, safe_redis_url
from keyturn.stores.redis.revocation_store import RedisRevocationStore
from keyturn.stores.redis.session_store import RedisSessionStore
from keyturn.stores.redis.storage import SqlRedisStorage
from keyturn.stores.redis.throttle import RedisThrottleStorage

__all__ = [
    "KEY_PREFIX",
    "RedisConnection",
    "RedisRevocationStore",
    "RedisSessionStore",
    "RedisThrottleStorage",
    "SqlRedisStorage",
    "safe_redis_url",
]
