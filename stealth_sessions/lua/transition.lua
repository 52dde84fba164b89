-- step_to / update_session_to / step_back / a scheduled step firing / a redirect.
-- KEYS: session, previous, back_to, data, sessions, slugs, codes, lock[, steps, due].
-- ARGV: user id, target, how ('s' step_to: the same slug slides the expiry, or 'u'
-- update_session_to: the same slug is left alone; then the expected version, if any), ttl
-- ms ('' = none), history length, now (inv), now (ms, 11 hex digits), the history entry's
-- JSON array before and after its source (the caller knows all but the source, which the
-- script reads), the caller's lock owner token ('' = none); ARGV[11..13]: a scheduled step
-- firing (step id, if_unchanged '1'|'0', source slug or ''), with KEYS 9 and 10.
-- Returns {status, current, previous, back_to, version, inv}; status 1: nothing done (update
-- to the current slug), 2: same slug (expiry slid), 3: written; {0, version}: conflict;
-- {-2}: the step is already applied or cancelled; {-3, current}: if_unchanged, and the user
-- moved on (the step is removed); {-4, lock value, ms left}: another owner holds the user's
-- lock, nothing was written (the step, if any, stays pending).
local locked = interrupted(KEYS[8], ARGV[10])
if locked then return locked end
local uid, target, how = ARGV[1], ARGV[2], ARGV[3]
local ttl = tonumber(ARGV[4]) or false
local hlen, now_inv = tonumber(ARGV[5]), ARGV[6]
local v = read_user(KEYS)
local cur, prev, back = v[1], v[2], v[3]
if not cur and v[4] then
  -- Expired, or deleted by hand: what is left of the session is forgotten.
  forget(KEYS, uid, v)
  prev, back, v = false, false, {false, false, false, false}
end
local mode, ver, inv, islug, entries = parse(v[4])
if #how > 1 and tonumber(string.sub(how, 2)) ~= ver then return {0, ver} end
if ARGV[11] then
  -- Its record is taken here, in the script that writes, so the step applies at most once
  -- however often the engine delivers it.
  redis.call('ZREM', KEYS[10], ARGV[11] .. ':' .. uid)
  if redis.call('HDEL', KEYS[9], ARGV[11]) == 0 then return {-2} end
  if ARGV[12] == '1' and (cur or '') ~= ARGV[13] then return {-3, cur or false} end
end
if cur == target then
  if string.sub(how, 1, 1) == 'u' and islug == cur then
    return {1, cur, prev, back, ver, inv}
  end
  local new_ver, new_inv = settle(KEYS, uid, v, ttl, now_inv, false)
  return {2, cur, prev, back, new_ver, new_inv}
end
ver = ver + 1
if ttl then
  redis.call('SET', KEYS[1], target, 'PX', ttl)
  if cur then redis.call('SET', KEYS[2], cur, 'PX', ttl) end
  if back then redis.call('PEXPIRE', KEYS[3], ttl) end
else
  if cur then
    redis.call('MSET', KEYS[1], target, KEYS[2], cur)
  else
    redis.call('SET', KEYS[1], target)
  end
  if back and mode ~= '0' then redis.call('PERSIST', KEYS[3]) end
end
if not cur then
  -- A new session: nothing of an earlier one (deleted by hand) carries over.
  if prev or back then redis.call('DEL', KEYS[2], KEYS[3]) end
  back = false
end
-- The source as JSON: a well-formed slug needs no escaping; anything else set by hand does.
local source = 'false'
if cur then source = flow_of(cur) and ('"' .. cur .. '"') or cjson.encode(cur) end
local quad = ARGV[8] .. source .. ARGV[9]
local entry = ARGV[7] .. (intern(KEYS[7], quad) or quad)
entries = push_entry(entries, entry, hlen)
reindex(KEYS, uid, islug, inv, target, now_inv)
redis.call('SET', KEYS[4], data_value(ttl and '1' or '0', ver, now_inv, target, entries))
return {3, target, cur or false, back, ver, now_inv}
