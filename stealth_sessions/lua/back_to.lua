-- KEYS[1]: the user's current-slug key.
-- ARGV: user_id, index prefix, ttl ms ('' = none), target, expected version ('' = any)
-- Returns {-1} without a session, {0, version} on conflict, else {3, ...} as transition.lua.
local k, uid, ix, target, expected = KEYS[1], ARGV[1], ARGV[2], ARGV[4], ARGV[5]
local ttl = tonumber(ARGV[3])
local v = redis.call('MGET', k, k .. ':previous', k .. ':version')
local cur, ver = v[1], 0
if cur then ver = tonumber(v[3] or '0') end
if expected ~= '' and tonumber(expected) ~= ver then return {0, ver} end
if not cur then return {-1} end
local had_ttl = redis.call('PTTL', k) >= 0
redis.call('SET', k .. ':back_to', target)
ver = redis.call('INCR', k .. ':version')
reindex(ix, uid, cur)
if ttl then expire_all(k, ix, uid, ttl, now_ms()) else persist_all(k, ix, uid, had_ttl) end
return {3, cur, v[2], target, ver, ttl or -1}
