-- For the purge: up to ARGV[2] index members of one shard whose activity is older than the
-- expiry cut ARGV[1] (inv). KEYS: sessions, slugs.
local cut, want, out = ARGV[1], tonumber(ARGV[2]), {}
for _, slug in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if #out >= want then break end
  local batch = redis.call('ZRANGEBYLEX', KEYS[1], '[' .. slug .. '|' .. cut, '(' .. slug .. '}',
                           'LIMIT', 0, want - #out)
  for _, m in ipairs(batch) do out[#out + 1] = m end
end
return out
