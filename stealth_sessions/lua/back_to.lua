-- set_back_to. KEYS: session, previous, back_to, data, sessions, slugs, lock.
-- ARGV: user id, target, expected version ('' = any), ttl ms ('' = none), now (inv), the
-- caller's lock owner token ('' = none).
-- Returns {-1} without a session, {0, version} on conflict, {-4, ...} when another owner
-- holds the lock, else {3, ...} as transition.lua.
local locked = interrupted(KEYS[7], ARGV[6])
if locked then return locked end
local uid, target, expected = ARGV[1], ARGV[2], ARGV[3]
local ttl = tonumber(ARGV[4]) or false
local v = read_user(KEYS)
local _, ver = parse(v[4])
if not v[1] then ver = 0 end
if expected ~= '' and tonumber(expected) ~= ver then return {0, ver} end
if not v[1] then return {-1} end
if ttl then
  redis.call('SET', KEYS[3], target, 'PX', ttl)
else
  redis.call('SET', KEYS[3], target)
end
v[3] = target
local new_ver, new_inv = settle(KEYS, uid, v, ttl, ARGV[5], true)
return {3, v[1], v[2], target, new_ver, new_inv}
