-- Remove scheduled steps, recording why (cancelled, failed). KEYS[1]: the current-slug key.
-- ARGV: steps index key, user_id, now ms, outcome, reason, outcomes length, outcomes ttl ms,
--       step ids... (none: all of the user's steps)
-- Returns {id, record, ...} for the steps removed here; a step already gone (applied,
-- cancelled meanwhile) is not returned, so callers report each removal exactly once.
local ix, uid, now, outcome, reason = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local steps, outcomes = KEYS[1] .. ':steps', KEYS[1] .. ':step_outcomes'
local ids = {}
for i = 8, #ARGV do ids[#ids + 1] = ARGV[i] end
if #ids == 0 then ids = redis.call('HKEYS', steps) end
local removed = {}
for _, id in ipairs(ids) do
  local record = redis.call('HGET', steps, id)
  if record then
    redis.call('HDEL', steps, id)
    redis.call('ZREM', ix, id .. ':' .. uid)
    redis.call('LPUSH', outcomes,
      cjson.encode({now, id, cjson.decode(record).target, outcome, reason}))
    removed[#removed + 1] = id
    removed[#removed + 1] = record
  end
end
if #removed > 0 then
  redis.call('LTRIM', outcomes, 0, tonumber(ARGV[6]) - 1)
  redis.call('PEXPIRE', outcomes, ARGV[7])
end
return removed
