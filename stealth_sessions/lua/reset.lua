-- ARGV[3]: expected version ('' = any); ARGV[4..6]: steps index key, outcomes length and
-- ttl ms, for cancelling the user's scheduled steps in the same step.
-- Returns {0, version} on conflict, else {status, current, previous, back_to, version, pttl,
-- steps} with status 1 when there was no session, 3 when one was removed; steps: the
-- scheduled steps cancelled, as remove_steps returns them.
local k, now, expected = KEYS[1], tonumber(ARGV[2]), ARGV[3]
local _, _, ix, uid = settings(k)
local v = read_user(k)
local cur = v[1]
local _, ver, islug = parse_meta(k, cur, v[4])
if expected ~= '' and tonumber(expected) ~= ver then return {0, ver} end
local pttl = cur and redis.call('PTTL', k) or -2
redis.call('DEL', unpack(user_keys(k)))
if cur and not v[4] then drop_legacy(k) end
-- Without meta, the user may still be listed at the current slug (see transition.lua).
reindex(ix, uid, indexed_slug(ix, uid, islug) or cur or false, false, now)
local steps = remove_steps(k, ARGV[4], uid, now, 'cancelled', 'reset', ARGV[5], ARGV[6], {})
return {cur and 3 or 1, cur, v[2], v[3], ver, pttl, steps}
