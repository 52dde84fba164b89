-- Remove scheduled steps, recording why (cancelled, failed). KEYS[1]: the current-slug key.
-- ARGV: steps index key, user_id, now ms, outcome, reason, outcomes length, outcomes ttl ms,
--       step ids... (none: all of the user's steps). Returns remove_steps' list (prelude).
local ids = {}
for i = 8, #ARGV do ids[#ids + 1] = ARGV[i] end
return remove_steps(KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5], ARGV[6],
                    ARGV[7], ids)
