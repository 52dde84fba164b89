-- Remove scheduled steps, recording why (cancelled, failed). KEYS: steps, due, step_outcomes.
-- ARGV: user_id, now ms, outcome, reason, outcomes length, outcomes ttl ms, step ids... (none:
-- all of the user's steps). Returns remove_steps' list (prelude).
local ids = {}
for i = 7, #ARGV do ids[#ids + 1] = ARGV[i] end
return remove_steps(KEYS[1], KEYS[2], KEYS[3], ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4],
                    ARGV[5], ARGV[6], ids)
