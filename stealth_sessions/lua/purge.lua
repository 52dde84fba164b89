-- Purge one user found by expired.lua, if their session is indeed gone. KEYS: session,
-- previous, back_to, data, sessions, slugs. ARGV: user id, the member found, ttl ms, now ms.
-- Returns 1 when purged. A session still there (SESSION_TTL raised, or persisted by hand)
-- gets its activity moved to where its expiry says, so it is looked at again then.
local uid, found = ARGV[1], ARGV[2]
local v = read_user(KEYS)
local mode, ver, inv, islug, entries = parse(v[4])
if not islug or found ~= member(islug, inv, uid) then
  redis.call('ZREM', KEYS[5], found)  -- a stale entry: the user is listed elsewhere
  return 0
end
if not v[1] then
  forget(KEYS, uid, v)
  return 1
end
local pttl = redis.call('PTTL', KEYS[1])
local seen = tonumber(ARGV[4])
if pttl > 0 then seen = seen + pttl - tonumber(ARGV[3]) end
local new_inv = string.format('%011x', 17592186044415 - seen)
reindex(KEYS, uid, islug, inv, v[1], new_inv)
redis.call('SET', KEYS[4], data_value(mode, ver, new_inv, islug, entries))
return 0
