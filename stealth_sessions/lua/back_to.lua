-- ARGV: user_id, index prefix, ttl ms ('' = none), target, expected version ('' = any)
-- Returns {-1} without a session, {0, version} on conflict, else snapshot(3).
local uid, ix, target, expected = ARGV[1], ARGV[2], ARGV[4], ARGV[5]
local ttl = tonumber(ARGV[3])
local cur = redis.call('GET', KEYS[1])
if not cur then
  if expected ~= '' and tonumber(expected) ~= 0 then return {0, 0} end
  return {-1}
end
local ver = tonumber(redis.call('GET', KEYS[4]) or '0')
if expected ~= '' and tonumber(expected) ~= ver then return {0, ver} end
redis.call('SET', KEYS[3], target)
ver = redis.call('INCR', KEYS[4])
reindex(ix, uid, cur)
expire_all(ix, uid, ttl or false, now_ms())
return snapshot(3, cur, ver)
