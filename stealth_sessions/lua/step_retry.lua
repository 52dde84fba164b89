-- A scheduled step handed back to the engine because another owner held the user's lock:
-- its record, with the retry counted, replaces the stored one if the step is still pending.
-- KEYS: steps. ARGV: step id, record (JSON). Returns 1 if it was still pending, else 0.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
