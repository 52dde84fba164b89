-- The slow path of get: a slug set or deleted by hand, an expiry to slide, leftovers of an
-- expired session. KEYS: session, previous, back_to, data, sessions, slugs.
-- ARGV: user id, ttl ms ('' = none), now (inv). Returns false without a session, else
-- {3, current, previous, back_to, version, inv}.
local uid = ARGV[1]
local v = read_user(KEYS)
if not v[1] then
  if v[4] then forget(KEYS, uid, v) end
  return false
end
local ver, inv = settle(KEYS, uid, v, tonumber(ARGV[2]) or false, ARGV[3], false)
return {3, v[1], v[2], v[3], ver, inv}
