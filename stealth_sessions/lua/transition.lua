-- ARGV[3]: target; ARGV[4]: how, '<mode><expected version>', mode 's' (step_to: run on the
-- same slug, it slides the expiry) or 'u' (update_session_to: nothing to do then), no
-- expected version meaning any; ARGV[5], ARGV[6]: the history entry, a JSON array
-- [at ms, method, source, target, origin], around its source: the caller knows the rest, and
-- joining three strings costs less than cjson.encode. ARGV[7..9]: a scheduled step firing.
-- Returns {0, version} on conflict, else {status, current, previous, back_to, version, pttl}
-- with status 1: nothing done (update to the current slug), 2: same slug, expiry slid,
-- 3: written. KEYS[2], given only by callers that want it (the HTTP API): the user's steps
-- hash, whose HGETALL is then appended to those rows (saves the caller a round trip).
local k, now, target, how = KEYS[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local ttl, hlen, ix, uid = settings(k)
local function out(row)
  if KEYS[2] then row[7] = redis.call('HGETALL', KEYS[2]) end
  return row
end
local v = read_user(k)
local cur, prev, back = v[1], v[2], v[3]
local mode, ver, islug = parse_meta(k, cur, v[4])
if #how > 1 and tonumber(string.sub(how, 2)) ~= ver then return {0, ver} end
if ARGV[7] then
  -- A scheduled step firing (service.run_scheduled_step, ARGV 7-9: step id, if_unchanged
  -- '1'|'0', source slug or ''). Its record is taken here, in the script that writes, so the
  -- step applies at most once however often the engine delivers it. Returns {-2}: already
  -- applied or cancelled; {-3, current}: if_unchanged and the user moved on (step removed).
  redis.call('ZREM', ix .. 'steps', ARGV[7] .. ':' .. uid)
  if redis.call('HDEL', k .. ':steps', ARGV[7]) == 0 then return {-2} end
  if ARGV[8] == '1' and (cur or '') ~= ARGV[9] then return {-3, cur or false} end
end
if cur == target then
  if string.sub(how, 1, 1) == 'u' then
    return out({1, cur, prev, back, ver, redis.call('PTTL', k)})
  end
  reindex(ix, uid, indexed_slug(ix, uid, islug), cur, now)
  settle(k, ix, uid, cur, ver, ttl, now, mode, ver, islug, prev, back)
  return out({2, cur, prev, back, ver, ttl or redis.call('PTTL', k)})
end
ver = ver + 1
local meta = (ttl and '1' or '0') .. ver .. '|' .. target
if ttl then
  redis.call('SET', k, target, 'PX', ttl)
  redis.call('SET', k .. ':meta', meta, 'PX', ttl)
  if cur then redis.call('SET', k .. ':previous', cur, 'PX', ttl) end
elseif cur then
  redis.call('MSET', k, target, k .. ':previous', cur, k .. ':meta', meta)
else
  redis.call('MSET', k, target, k .. ':meta', meta)
end
if cur and not mode then drop_legacy(k) end
if not cur then
  -- A new session: nothing of an earlier one (deleted by hand) carries over.
  if prev or back then redis.call('DEL', k .. ':previous', k .. ':back_to') end
  back = false
end
-- The source as JSON: a well-formed slug needs no escaping; anything else set by hand does.
local source = 'false'
if cur then source = flow_of(cur) and ('"' .. cur .. '"') or cjson.encode(cur) end
local history = k .. ':history'
if redis.call('LPUSH', history, ARGV[5] .. source .. ARGV[6]) >= 2 * hlen then
  redis.call('LTRIM', history, 0, hlen - 1)  -- trimmed in batches: fewer calls
end
local old = indexed_slug(ix, uid, islug)
if cur and not old then
  -- No meta (deleted by hand, or an earlier build's session): the user may still be listed
  -- at the current slug. Forget that entry; reindex lists the user afresh.
  redis.call('ZREM', ix .. 'slug:' .. cur, uid)
end
reindex(ix, uid, old, target, now)
if ttl then
  redis.call('PEXPIRE', history, ttl)
  if back then redis.call('PEXPIRE', k .. ':back_to', ttl) end
  index_expiry(ix, uid, target, ttl, now, mode, islug)
elseif mode ~= '0' then
  unexpire(k, ix, uid)
end
return out({3, target, cur or false, back, ver, ttl or -1})
