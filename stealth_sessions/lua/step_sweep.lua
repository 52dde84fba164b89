-- Claim, for the sweep, up to ARGV[4] steps of the index ARGV[1] scored at or before ARGV[2]
-- (ms), moving their score to ARGV[3]: the step is looked at again one grace period later if
-- still pending, and concurrent sweeps never claim the same step twice. Returns the members.
local members = redis.call('ZRANGEBYSCORE', ARGV[1], '-inf', ARGV[2], 'LIMIT', 0,
                           tonumber(ARGV[4]))
for _, member in ipairs(members) do redis.call('ZADD', ARGV[1], ARGV[3], member) end
return members
