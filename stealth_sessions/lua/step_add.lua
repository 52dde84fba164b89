-- Store a scheduled step. KEYS: session, steps, due.
-- ARGV: user_id, step id, target, due ms, created ms, if_unchanged ('1'|'0'), method, sweep
--       score (ms: when the sweep may first look at it), data (its JSON, '' = none: kept as
--       a string, so that it reads back byte for byte; cjson would turn {} into []).
-- Returns the user's current slug (false: no session): the step's recorded source, which an
-- if_unchanged step requires at firing time. Read here so it is the slug at the write.
local cur = redis.call('GET', KEYS[1])
if cur == '' then cur = false end  -- blank: no session (as Stealth writes it)
redis.call('HSET', KEYS[2], ARGV[2], cjson.encode({
  target = ARGV[3], due = tonumber(ARGV[4]), created = tonumber(ARGV[5]),
  if_unchanged = ARGV[6] == '1', method = ARGV[7], source = cur or false,
  data = ARGV[9] ~= '' and ARGV[9] or nil}))
-- No TTL on either key, on purpose: a pending step outlives the session it was made in.
redis.call('ZADD', KEYS[3], ARGV[8], ARGV[2] .. ':' .. ARGV[1])
return cur
