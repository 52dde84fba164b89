-- Catch-all levels (Stealth's catch_all counters). KEYS: session, failures.
-- ARGV: 'record' or 'read', now ms, ttl ms (CATCH_ALL_TTL).
-- failures: a HASH, slug -> '<count>|<expires ms>': each slug's counter lapses ttl after its
-- last failure (the hash itself expires ttl after the user's last failure).
-- Returns {level, slug}: the counter of the user's current slug (after counting this failure
-- when recording); {0, false} without a session (nothing recorded).
local cur = redis.call('GET', KEYS[1])
if not cur or cur == '' then return {0, false} end
local now = tonumber(ARGV[2])
local level = 0
local entry = redis.call('HGET', KEYS[2], cur)
if entry then
  local count, expires = string.match(entry, '^(%d+)|(%d+)$')
  if count and tonumber(expires) > now then level = tonumber(count) end
end
if ARGV[1] == 'record' then
  level = level + 1
  redis.call('HSET', KEYS[2], cur, string.format('%d|%d', level, now + tonumber(ARGV[3])))
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return {level, cur}
