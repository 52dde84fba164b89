-- Claim, for the sweep, up to ARGV[3] steps of one shard's due index (KEYS[1]) scored at or
-- before ARGV[1] (ms), moving their score to ARGV[2]: the step is looked at again one grace
-- period later if still pending, and concurrent sweeps never claim the same step twice.
-- Returns the members.
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0,
                           tonumber(ARGV[3]))
for _, member in ipairs(members) do redis.call('ZADD', KEYS[1], ARGV[2], member) end
return members
