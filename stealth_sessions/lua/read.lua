-- ARGV: user_id, index prefix, ttl ms ('' = none), slide ('1': get, '0': peek)
local uid, ix, slide = ARGV[1], ARGV[2], ARGV[4] == '1'
local ttl = tonumber(ARGV[3])
local cur = redis.call('GET', KEYS[1])
if not cur then
  if slide then reindex(ix, uid, false) end
  return false
end
local ver = tonumber(redis.call('GET', KEYS[4]) or '0')
if slide then
  -- A slug written by hand (redis-cli) is a write: index it and count it as a version.
  if reindex(ix, uid, cur) then ver = redis.call('INCR', KEYS[4]) end
  if ttl then expire_all(ix, uid, ttl, now_ms()) end
end
return snapshot(3, cur, ver)
