-- Release a user's lock if this owner still holds it. KEYS: lock. ARGV: owner token.
-- Returns 1 when released, 0 when it had expired (and may be another owner's now).
local held = redis.call('GET', KEYS[1])
if held and string.sub(held, 1, 33) == ARGV[1] .. '|' then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
