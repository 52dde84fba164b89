-- A user as an export reads them, in one call: KEYS: session, previous, back_to, data, steps.
-- Returns {session, previous, back_to, data, the steps hash as HGETALL gives it}. The history
-- is decoded by the caller, from data and the shard's dictionary (store.RedisStore.exported).
local values = redis.call('MGET', KEYS[1], KEYS[2], KEYS[3], KEYS[4])
return {values[1], values[2], values[3], values[4], redis.call('HGETALL', KEYS[5])}
