"""The revocation log in Redis (see the package docstring for the key layout).

The log is global and small (entries live only as long as the tokens they
refuse), so all of it shares one hash tag, ``{rev}``: appending is one Lua
script that takes the next ``seq`` with INCR and writes the entry and its three
indexes together, so an entry is visible exactly when its ``seq`` is taken and
an incremental reader can never skip one.

When the counter does not exist it starts at the server's clock in milliseconds
times 1000, so if Redis ever loses the log (no persistence, a flush), new
entries still get larger ``seq`` values than any instance has already seen,
and the replicas pick them up (the values stay below 2**53, exact everywhere).

Entries carry no key TTL (a hash field cannot expire on older servers); they
are removed by :meth:`RedisRevocationStore.sweep`, which the server runs
periodically. This is also why Redis must never evict these keys
(``maxmemory-policy noeviction``): a dropped entry would let a revoked token in.
"""

from __future__ import annotations

import json
import math

from keyturn.stores.records import Revocation, RevocationKind
from keyturn.stores.redis.connection import KEY_PREFIX, RedisConnection

__all__ = ["REVOCATION_KEYS", "RedisRevocationStore"]

_TAG = KEY_PREFIX + "{rev}:"

#: seq counter, entries (seq -> JSON), and the indexes by seq, created_at, expires_at.
REVOCATION_KEYS = (
    _TAG + "seq",
    _TAG + "entries",
    _TAG + "by-seq",
    _TAG + "by-created",
    _TAG + "by-expiry",
)

# KEYS: seq, entries, by-seq, by-created, by-expiry. ARGV: json, created_at, expires_at.
# Numbers above 10^14 are formatted by hand: Lua's tostring would round them.
_ADD = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('SET', KEYS[1], string.format('%.0f', ms * 1000))
end
local seq = string.format('%.0f', redis.call('INCR', KEYS[1]))
redis.call('HSET', KEYS[2], seq, ARGV[1])
redis.call('ZADD', KEYS[3], seq, seq)
redis.call('ZADD', KEYS[4], ARGV[2], seq)
redis.call('ZADD', KEYS[5], ARGV[3], seq)
return seq
"""

# KEYS: entries, by-seq, by-created. ARGV: after_seq, since ('' = no time window).
# Returns seq, json, seq, json, ... (unordered; expiry is filtered by the caller).
_CHANGES = """
local seqs = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf')
if ARGV[2] ~= '' then
  local seen = {}
  for _, s in ipairs(seqs) do seen[s] = true end
  for _, s in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], ARGV[2], '+inf')) do
    if not seen[s] then seqs[#seqs + 1] = s end
  end
end
local out = {}
for _, s in ipairs(seqs) do
  local entry = redis.call('HGET', KEYS[1], s)
  if entry then
    out[#out + 1] = s
    out[#out + 1] = entry
  end
end
return out
"""

# KEYS: entries, by-seq, by-created, by-expiry. ARGV: now.
_SWEEP = """
local doomed = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[1])
for _, s in ipairs(doomed) do
  redis.call('HDEL', KEYS[1], s)
  redis.call('ZREM', KEYS[2], s)
  redis.call('ZREM', KEYS[3], s)
  redis.call('ZREM', KEYS[4], s)
end
return #doomed
"""


class RedisRevocationStore:
    """:class:`~keyturn.stores.protocols.RevocationStore` on Redis: append-only,
    ``seq`` from INCR, the same ``changes`` semantics as the SQL store."""

    def __init__(self, connection: RedisConnection) -> None:
        self._redis = connection
        self._add = connection.script(_ADD)
        self._changes = connection.script(_CHANGES)
        self._sweep = connection.script(_SWEEP)

    async def add(self, entry: Revocation) -> Revocation:
        payload = json.dumps([entry.kind, entry.value, entry.created_at, entry.expires_at])
        with self._redis.errors():
            seq = await self._add(
                keys=list(REVOCATION_KEYS),
                args=[payload, repr(entry.created_at), repr(entry.expires_at)],
            )
        return Revocation(entry.kind, entry.value, entry.created_at, entry.expires_at, int(seq))

    async def changes(self, *, after_seq: int, since: float, now: float) -> list[Revocation]:
        window = "" if math.isinf(since) else repr(since)
        entries, by_seq, by_created = REVOCATION_KEYS[1:4]
        with self._redis.errors():
            reply: list[str] = await self._changes(
                keys=[entries, by_seq, by_created], args=[int(after_seq), window]
            )
        found = [_decode(int(reply[i]), reply[i + 1]) for i in range(0, len(reply), 2)]
        return sorted((e for e in found if e.expires_at > now), key=lambda e: e.seq)

    async def sweep(self, now: float) -> int:
        with self._redis.errors():
            count = await self._sweep(keys=list(REVOCATION_KEYS[1:]), args=[repr(now)])
        return int(count)


def _decode(seq: int, payload: str) -> Revocation:
    kind: RevocationKind
    kind, value, created_at, expires_at = json.loads(payload)
    return Revocation(kind, value, float(created_at), float(expires_at), seq)
