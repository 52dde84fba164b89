-- ARGV: index prefix, user key prefix, now ms. Returns {slug, count, ...}, expired users
-- purged first; slugs nobody is at any more are forgotten.
local ix = ARGV[1]
purge_expired(ix, ARGV[2], tonumber(ARGV[3]))
local out = {}
for _, slug in ipairs(redis.call('SMEMBERS', ix .. 'slugs')) do
  local n = redis.call('ZCARD', ix .. 'slug:' .. slug)
  if n == 0 then
    redis.call('SREM', ix .. 'slugs', slug)
  else
    out[#out + 1] = slug
    out[#out + 1] = n
  end
end
return out
