-- Store a scheduled step (service.step_to_in / step_to_at). KEYS[1]: the current-slug key.
-- ARGV: steps index key, user_id, step id, target, due ms, created ms, if_unchanged ('1'|'0'),
--       method, sweep index score (ms: when the sweep may first look at it)
-- Returns the user's current slug (false: no session): the step's recorded source, which an
-- if_unchanged step requires at firing time. Read here so it is the slug at the write.
local cur = redis.call('GET', KEYS[1])
redis.call('HSET', KEYS[1] .. ':steps', ARGV[3], cjson.encode({
  target = ARGV[4], due = tonumber(ARGV[5]), created = tonumber(ARGV[6]),
  if_unchanged = ARGV[7] == '1', method = ARGV[8], source = cur or false}))
-- No TTL on either key, on purpose: a pending step outlives the session it was made in.
redis.call('ZADD', ARGV[1], ARGV[9], ARGV[3] .. ':' .. ARGV[2])
return cur
