-- KEYS[1]: the user's current-slug key.
-- ARGV: user_id, index prefix, ttl ms ('' = none), target, mode ('step' | 'update'),
--       expected version ('' = any), method, history length
-- Returns {0, version} on conflict, else {status, current, previous, back_to, version, pttl}
-- with status 1: nothing done (update to the current slug), 2: same slug, expiry slid,
-- 3: written.
local k, uid, ix, target, mode, expected = KEYS[1], ARGV[1], ARGV[2], ARGV[4], ARGV[5], ARGV[6]
local ttl = tonumber(ARGV[3])
local v = redis.call('MGET', k, k .. ':version', k .. ':back_to')
local cur, ver = v[1], 0
if cur then ver = tonumber(v[2] or '0') end
if expected ~= '' and tonumber(expected) ~= ver then return {0, ver} end
if ARGV[9] then
  -- A scheduled step firing (service.run_scheduled_step, ARGV 9-11: step id, if_unchanged
  -- '1'|'0', source slug or ''). Its record is taken here, in the script that writes, so the
  -- step applies at most once however often the engine delivers it. Returns {-2}: already
  -- applied or cancelled; {-3, current}: if_unchanged and the user moved on (step removed).
  redis.call('ZREM', ix .. 'steps', ARGV[9] .. ':' .. uid)
  if redis.call('HDEL', k .. ':steps', ARGV[9]) == 0 then return {-2} end
  if ARGV[10] == '1' and (cur or '') ~= ARGV[11] then return {-3, cur or false} end
end
if cur == target then
  if mode ~= 'update' then
    reindex(ix, uid, cur)
    if ttl then expire_all(k, ix, uid, ttl, now_ms()) end
  end
  return {mode == 'update' and 1 or 2, cur, redis.call('GET', k .. ':previous'), v[3], ver,
          redis.call('PTTL', k)}
end
local now = now_ms()
local had_ttl = cur and redis.call('PTTL', k) >= 0
redis.call('SET', k, target)
local back = v[3]
if cur then
  redis.call('SET', k .. ':previous', cur)
else
  -- A new session: nothing of an earlier one (deleted by hand) carries over.
  redis.call('DEL', k .. ':previous', k .. ':back_to', k .. ':version')
  back = false
end
ver = redis.call('INCR', k .. ':version')
if redis.call('LPUSH', k .. ':history', cjson.encode({now, ARGV[7], cur or false, target}))
    > tonumber(ARGV[8]) then
  redis.call('LTRIM', k .. ':history', 0, tonumber(ARGV[8]) - 1)
end
reindex(ix, uid, target)
if ttl then expire_all(k, ix, uid, ttl, now) else persist_all(k, ix, uid, had_ttl) end
return {3, target, cur or false, back, ver, ttl or -1}
