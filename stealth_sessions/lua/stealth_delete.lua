-- On a Stealth bot's Redis (import-stealth --delete-source): delete a user's keys if their
-- slug is still the one imported (a bot still writing there may have moved them since).
-- KEYS: <id>, <id>-previous, <id>-back_to. ARGV: the slug imported. Returns 1 when deleted.
-- (Not prefixed with prelude.lua: it runs on Stealth's Redis, on Stealth's keys.)
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return 1
