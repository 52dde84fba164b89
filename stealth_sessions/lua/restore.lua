-- Restore one user as exported (transfer.py), or import one from Stealth.
-- KEYS: session, previous, back_to, data, sessions, slugs, codes, steps, due.
-- ARGV: user id, replace ('1'|'0'), slug, previous ('' = none), back_to ('' = none), version,
-- activity (inv), ttl ms ('' = none), history length, the number of history entries n, then n
-- entries newest first ('<at ms, 11 hex digits>' .. JSON array), then per pending step: step
-- id, its JSON record, its sweep score.
-- Returns 1 when written, 0 when the user has a session and replace is not '1'. Bounded by
-- what the caller passes: at most HISTORY_LENGTH entries and the user's own steps.
local uid, replace, slug, prev, back = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local ver, inv, ttl, hlen = tonumber(ARGV[6]), ARGV[7], tonumber(ARGV[8]) or false,
  tonumber(ARGV[9])
local v = read_user(KEYS)
if v[1] and replace ~= '1' then return 0 end
if v[1] or v[4] then forget(KEYS, uid, v) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
if replace == '1' then
  -- The user becomes exactly what was exported: steps not in it go (a job delivered for one
  -- later finds no step and does nothing).
  for _, id in ipairs(redis.call('HKEYS', KEYS[8])) do
    redis.call('ZREM', KEYS[9], id .. ':' .. uid)
  end
  redis.call('DEL', KEYS[8])
end
local function put(key, value)
  if ttl then redis.call('SET', key, value, 'PX', ttl) else redis.call('SET', key, value) end
end
put(KEYS[1], slug)
if prev ~= '' then put(KEYS[2], prev) end
if back ~= '' then put(KEYS[3], back) end
local n = tonumber(ARGV[10])
local parts = {}
for i = 1, math.min(n, hlen) do
  local entry = ARGV[10 + i]
  local at, quad = string.sub(entry, 1, 11), string.sub(entry, 12)
  parts[#parts + 1] = '\n' .. at .. (intern(KEYS[7], quad) or quad)
end
redis.call('SET', KEYS[4], data_value(ttl and '1' or '0', ver, inv, slug, table.concat(parts)))
reindex(KEYS, uid, nil, nil, slug, inv)
for i = 11 + n, #ARGV, 3 do
  redis.call('HSET', KEYS[8], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[9], ARGV[i + 2], ARGV[i] .. ':' .. uid)
end
return 1
