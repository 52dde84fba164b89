-- Who holds a user's lock. KEYS: lock. Returns {value, ms left}, or false when free.
local held = redis.call('GET', KEYS[1])
if not held then return false end
return {held, redis.call('PTTL', KEYS[1])}
