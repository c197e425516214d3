"""The Lua scripts of :class:`~keyturn.stores.redis.session_store.RedisSessionStore`.

Every script works on one user's slot (hash tag ``{u:<user_id>}``): KEYS[1] is
the user's index (a sorted set of ``id_hash`` by ``created_at``); the session
hashes are KEYS[2] or are built from ARGV[1], the user's session-key prefix,
which carries the same tag, so every key a script touches is in that one slot
(legal on Redis Cluster). Times arrive as Python ``repr`` strings and are stored
as given: Lua's own number formatting would round them.
"""

__all__ = ["CREATE", "DELETE", "DELETE_FOR_USER", "LIST", "SWEEP", "TOUCH"]

_HELPERS = """
local function extend(key, ttl)
  if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
end
local function expired(key, now)
  local f = redis.call('HMGET', key, 'last_seen_at', 'idle_timeout', 'expires_at')
  if not f[1] then return nil end
  local last, idle, exp = tonumber(f[1]), tonumber(f[2]), tonumber(f[3])
  return now >= exp or now >= last + idle
end
"""

# KEYS: index, new session key. ARGV: prefix, id_hash, created_at, now,
# max_per_user, ttl_ms, field, value, ...
CREATE = (
    _HELPERS
    + """
local index, key, prefix, id = KEYS[1], KEYS[2], ARGV[1], ARGV[2]
local now, cap, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
redis.call('DEL', key)
redis.call('HSET', key, unpack(ARGV, 7))
redis.call('PEXPIRE', key, ttl)
redis.call('ZADD', index, ARGV[3], id)
extend(index, ttl)
local live = {}
for _, other in ipairs(redis.call('ZRANGE', index, 0, -1)) do
  if other ~= id then
    local dead = expired(prefix .. other, now)
    if dead == nil then
      redis.call('ZREM', index, other)
    elseif not dead then
      live[#live + 1] = other
    end
  end
end
local evicted = {}
for n = 1, math.min(#live + 1 - cap, #live) do
  local other = prefix .. live[n]
  evicted[#evicted + 1] = redis.call('HGETALL', other)
  redis.call('DEL', other)
  redis.call('ZREM', index, live[n])
end
return evicted
"""
)

# KEYS: index, session key. ARGV: last_seen_at, grace_ms.
TOUCH = (
    _HELPERS
    + """
local f = redis.call('HMGET', KEYS[2], 'last_seen_at', 'idle_timeout', 'expires_at')
if not f[1] then return 0 end
local seen = tonumber(ARGV[1])
if seen <= tonumber(f[1]) then return 0 end
redis.call('HSET', KEYS[2], 'last_seen_at', ARGV[1])
local deadline = math.min(tonumber(f[3]), seen + tonumber(f[2]))
local ttl = math.max(0, math.ceil((deadline - seen) * 1000)) + tonumber(ARGV[2])
redis.call('PEXPIRE', KEYS[2], ttl)
extend(KEYS[1], ttl)
return 1
"""
)

# KEYS: index, session key. ARGV: id_hash.
DELETE = """
local data = redis.call('HGETALL', KEYS[2])
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[1], ARGV[1])
return data
"""

# KEYS: index. ARGV: prefix, id_hash to keep ('' for none).
DELETE_FOR_USER = """
local deleted = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if id ~= ARGV[2] then
    local key = ARGV[1] .. id
    local data = redis.call('HGETALL', key)
    if #data > 0 then deleted[#deleted + 1] = data end
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], id)
  end
end
return deleted
"""

# KEYS: index. ARGV: prefix. Drops index entries whose session Redis expired.
LIST = """
local out = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local data = redis.call('HGETALL', ARGV[1] .. id)
  if #data > 0 then out[#out + 1] = data else redis.call('ZREM', KEYS[1], id) end
end
return out
"""

# KEYS: index. ARGV: prefix, now. Returns id_hash, handle, id_hash, handle, ...
SWEEP = (
    _HELPERS
    + """
local now, gone = tonumber(ARGV[2]), {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. id
  local dead = expired(key, now)
  if dead == nil then
    redis.call('ZREM', KEYS[1], id)
  elseif dead then
    gone[#gone + 1] = id
    gone[#gone + 1] = redis.call('HGET', key, 'handle')
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], id)
  end
end
return gone
"""
)
