-- ARGV: user_id, index prefix, ttl ms ('' = none), target, mode ('step' | 'update'),
--       expected version ('' = any), method, history length
-- Returns {0, version} on conflict, else snapshot(status) with status
-- 1: nothing done (update to the current slug), 2: same slug, expiry slid, 3: written.
local uid, ix, target, mode, expected = ARGV[1], ARGV[2], ARGV[4], ARGV[5], ARGV[6]
local ttl = tonumber(ARGV[3])
local cur = redis.call('GET', KEYS[1])
local ver = 0
if cur then ver = tonumber(redis.call('GET', KEYS[4]) or '0') end
if expected ~= '' and tonumber(expected) ~= ver then return {0, ver} end
if cur == target then
  if mode == 'update' then return snapshot(1, cur, ver) end
  reindex(ix, uid, cur)
  if ttl then expire_all(ix, uid, ttl, now_ms()) end
  return snapshot(2, cur, ver)
end
local now = now_ms()
redis.call('SET', KEYS[1], target)
if cur then
  redis.call('SET', KEYS[2], cur)
else
  -- A new session: nothing of an earlier one (deleted by hand) carries over.
  redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
end
ver = redis.call('INCR', KEYS[4])
redis.call('LPUSH', KEYS[5], cjson.encode({now, ARGV[7], cur or false, target}))
redis.call('LTRIM', KEYS[5], 0, tonumber(ARGV[8]) - 1)
reindex(ix, uid, target)
expire_all(ix, uid, ttl or false, now)
return snapshot(3, target, ver)
