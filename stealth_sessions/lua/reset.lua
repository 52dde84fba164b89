-- ARGV: user_id, index prefix, expected version ('' = any)
-- Returns {0, version} on conflict, {1} when there was no session, else the removed snapshot.
local uid, ix, expected = ARGV[1], ARGV[2], ARGV[3]
local cur = redis.call('GET', KEYS[1])
local ver = 0
if cur then ver = tonumber(redis.call('GET', KEYS[4]) or '0') end
if expected ~= '' and tonumber(expected) ~= ver then return {0, ver} end
local removed = {1}
if cur then removed = snapshot(3, cur, ver) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
reindex(ix, uid, false)
return removed
