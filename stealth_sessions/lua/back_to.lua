-- ARGV[3]: target, ARGV[4]: expected version ('' = any).
-- Returns {-1} without a session, {0, version} on conflict, else {3, ...} as transition.lua
-- (with KEYS[2], the steps hash: its HGETALL appended, as transition.lua).
local k, now, target, expected = KEYS[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local ttl, _, ix, uid = settings(k)
local v = read_user(k)
local cur, prev = v[1], v[2]
local mode, ver, islug = parse_meta(k, cur, v[4])
if expected ~= '' and tonumber(expected) ~= ver then return {0, ver} end
if not cur then return {-1} end
if ttl then
  redis.call('SET', k .. ':back_to', target, 'PX', ttl)
else
  redis.call('SET', k .. ':back_to', target)
end
reindex(ix, uid, indexed_slug(ix, uid, islug), cur, now)
settle(k, ix, uid, cur, ver + 1, ttl, now, mode, ver, islug, prev, false)
local row = {3, cur, prev, target, ver + 1, ttl or redis.call('PTTL', k)}
if KEYS[2] then row[7] = redis.call('HGETALL', KEYS[2]) end
return row
