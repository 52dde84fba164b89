-- KEYS[1]: the user's current-slug key.
-- ARGV: user_id, index prefix, ttl ms ('' = none), slide ('1': get, '0': peek)
-- Returns false without a session, else {3, current, previous, back_to, version, pttl}.
local k, uid, ix, slide = KEYS[1], ARGV[1], ARGV[2], ARGV[4] == '1'
local ttl = tonumber(ARGV[3])
local v = redis.call('MGET', k, k .. ':previous', k .. ':back_to', k .. ':version')
local cur, ver = v[1], tonumber(v[4] or '0')
if slide then
  -- A slug written or deleted by hand (redis-cli) is a write: index it, count it as a version.
  if reindex(ix, uid, cur) and cur then ver = redis.call('INCR', k .. ':version') end
  if cur and ttl then expire_all(k, ix, uid, ttl, now_ms()) end
end
if not cur then return false end
return {3, cur, v[2], v[3], ver, redis.call('PTTL', k)}
