-- ARGV[3]: target, ARGV[4]: expected version ('' = any).
-- Returns {-1} without a session, {0, version} on conflict, else {3, ...} as transition.lua
-- (with KEYS[2], the steps hash: its HGETALL appended, as transition.lua).
local k, now, target, expected = KEYS[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local ttl, _, ix, uid = settings(k)
local v = redis.call('MGET', k, k .. ':previous', k .. ':version', k .. ':indexed')
local cur, marker, ver = v[1], v[4], 0
if cur then ver = tonumber(v[3] or '0') end
if expected ~= '' and tonumber(expected) ~= ver then return {0, ver} end
if not cur then return {-1} end
redis.call('SET', k .. ':back_to', target)
ver = redis.call('INCR', k .. ':version')
reindex(ix, uid, indexed_slug(ix, uid, marker), cur, now)
settle(k, ix, uid, cur, ttl, now, marker, false)
local row = {3, cur, v[2], target, ver, ttl or redis.call('PTTL', k)}
if KEYS[2] then row[7] = redis.call('HGETALL', KEYS[2]) end
return row
