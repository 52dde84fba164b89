-- KEYS[1]: the user's current-slug key.
-- ARGV: user_id, index prefix, expected version ('' = any)
-- Returns {0, version} on conflict, {1} when there was no session, else the removed session
-- as {3, current, previous, back_to, version, pttl}.
local k, uid, ix, expected = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local v = redis.call('MGET', k, k .. ':previous', k .. ':back_to', k .. ':version')
local cur, ver = v[1], 0
if cur then ver = tonumber(v[4] or '0') end
if expected ~= '' and tonumber(expected) ~= ver then return {0, ver} end
local removed = {1}
if cur then removed = {3, cur, v[2], v[3], ver, redis.call('PTTL', k)} end
redis.call('DEL', unpack(user_keys(k)))
reindex(ix, uid, false)
return removed
