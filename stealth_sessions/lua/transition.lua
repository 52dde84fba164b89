-- ARGV[3]: target; ARGV[4]: how, '<mode><expected version>|<method>|<origin>', mode 's'
-- (step_to: run on the same slug, it slides the expiry) or 'u' (update_session_to: nothing
-- to do then), no expected version meaning any, origin what moved the user ('code', 'api',
-- 'admin', 'scheduler'...); ARGV[5..7]: a scheduled step firing (see below).
-- Returns {0, version} on conflict, else {status, current, previous, back_to, version, pttl}
-- with status 1: nothing done (update to the current slug), 2: same slug, expiry slid,
-- 3: written. KEYS[2], given only by callers that want it (the HTTP API): the user's steps
-- hash, whose HGETALL is then appended to those rows (saves the caller a round trip).
local k, now, target = KEYS[1], tonumber(ARGV[2]), ARGV[3]
local ttl, hlen, ix, uid = settings(k)
local mode, expected, method, origin = string.match(ARGV[4], '^(.)(%d*)|([^|]*)|(.*)$')
local function out(row)
  if KEYS[2] then row[7] = redis.call('HGETALL', KEYS[2]) end
  return row
end
local v = redis.call('MGET', k, k .. ':previous', k .. ':back_to', k .. ':version',
                     k .. ':indexed')
local cur, marker, ver = v[1], v[5], 0
if cur then ver = tonumber(v[4] or '0') end
if expected ~= '' and tonumber(expected) ~= ver then return {0, ver} end
if ARGV[5] then
  -- A scheduled step firing (service.run_scheduled_step, ARGV 5-7: step id, if_unchanged
  -- '1'|'0', source slug or ''). Its record is taken here, in the script that writes, so the
  -- step applies at most once however often the engine delivers it. Returns {-2}: already
  -- applied or cancelled; {-3, current}: if_unchanged and the user moved on (step removed).
  redis.call('ZREM', ix .. 'steps', ARGV[5] .. ':' .. uid)
  if redis.call('HDEL', k .. ':steps', ARGV[5]) == 0 then return {-2} end
  if ARGV[6] == '1' and (cur or '') ~= ARGV[7] then return {-3, cur or false} end
end
if cur == target then
  if mode == 'u' then return out({1, cur, v[2], v[3], ver, redis.call('PTTL', k)}) end
  reindex(ix, uid, indexed_slug(ix, uid, marker), cur, now)
  settle(k, ix, uid, cur, ttl, now, marker, false)
  return out({2, cur, v[2], v[3], ver, ttl or redis.call('PTTL', k)})
end
local back, new_marker = v[3], (ttl and '1' or '0') .. target
ver = ver + 1
if cur then
  redis.call('MSET', k, target, k .. ':previous', cur, k .. ':version', ver,
             k .. ':indexed', new_marker)
else
  -- A new session: nothing of an earlier one (deleted by hand) carries over.
  redis.call('DEL', k .. ':previous', k .. ':back_to')
  redis.call('MSET', k, target, k .. ':version', ver, k .. ':indexed', new_marker)
  back = false
end
if redis.call('LPUSH', k .. ':history', cjson.encode({now, method, cur or false, target, origin}))
    >= 2 * hlen then
  redis.call('LTRIM', k .. ':history', 0, hlen - 1)  -- trimmed in batches: fewer calls
end
reindex(ix, uid, indexed_slug(ix, uid, marker), target, now)
settle(k, ix, uid, target, ttl, now, marker, true)
return out({3, target, cur or false, back, ver, ttl or -1})
