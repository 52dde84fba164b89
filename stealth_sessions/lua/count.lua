-- Users per slug in one shard. KEYS: sessions, slugs. ARGV: the expiry cut (inv; '' without
-- an expiry): users whose last activity is older are expired and not counted.
-- Returns {slug, count, ...}; slugs nobody is at any more are forgotten.
local cut, out = ARGV[1], {}
for _, slug in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local all = redis.call('ZLEXCOUNT', KEYS[1], '[' .. slug .. '|', '(' .. slug .. '}')
  if all == 0 then
    redis.call('SREM', KEYS[2], slug)
  else
    local n = all
    if cut ~= '' then n = redis.call('ZLEXCOUNT', KEYS[1], '[' .. slug .. '|', '(' .. slug .. '|' .. cut) end
    if n > 0 then
      out[#out + 1] = slug
      out[#out + 1] = n
    end
  end
end
return out
