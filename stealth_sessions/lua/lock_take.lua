-- Take a user's lock. KEYS: lock, session. ARGV: owner token (32 hex digits), now ms, holder
-- name, timeout ms. The value: '<token>|<since ms>|<holder>|<slug at lock time>' (what
-- current_lock() reads; transition.lua compares its first 33 bytes with '<token>|').
-- Returns {1}: taken; {2}: already held with this token (re-entered); {0, value, ms left}:
-- held by another owner.
local held = redis.call('GET', KEYS[1])
if held then
  if string.sub(held, 1, 33) == ARGV[1] .. '|' then return {2} end
  return {0, held, redis.call('PTTL', KEYS[1])}
end
local slug = redis.call('GET', KEYS[2]) or ''
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. ARGV[2] .. '|' .. ARGV[3] .. '|' .. slug,
           'PX', ARGV[4])
return {1}
