-- reset. KEYS: session, previous, back_to, data, sessions, slugs, steps, due, step_outcomes,
-- lock, failures (the catch-all counters go with the session). ARGV: user id, expected version ('' = any), now ms, outcomes length, outcomes ttl ms,
-- the caller's lock owner token ('' = none).
-- Returns {-4, ...} when another owner holds the lock (nothing done), {0, version} on
-- conflict, else {status, current, previous, back_to, version, inv,
-- cancelled steps} with status 1 when there was no session, 3 when one was removed; the
-- steps cancelled as remove_steps returns them.
local locked = interrupted(KEYS[10], ARGV[6])
if locked then return locked end
local uid, expected = ARGV[1], ARGV[2]
local v = read_user(KEYS)
local _, ver, inv = parse(v[4])
if not v[1] then ver = 0 end
if expected ~= '' and tonumber(expected) ~= ver then return {0, ver} end
forget(KEYS, uid, v)
redis.call('DEL', KEYS[1], KEYS[11])
local steps = remove_steps(KEYS[7], KEYS[8], KEYS[9], uid, tonumber(ARGV[3]), 'cancelled',
                           'reset', ARGV[4], ARGV[5], {})
return {v[1] and 3 or 1, v[1], v[2], v[3], ver, inv or false, steps}
