-- ARGV: index prefix, user key prefix, index name ('all', 'flow:<f>', 'slug:<s>'),
--       lex min, lex max, limit, wanted slug (''), wanted flow ('')
-- Returns up to limit + 1 rows {user_id, current, previous, back_to, version, pttl}:
-- only users whose session exists and matches, so the page is exact.
local ix, up, name, lo, hi = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local limit, want_slug, want_flow = tonumber(ARGV[6]), ARGV[7], ARGV[8]
purge_expired(ix, up)
local out = {}
while #out <= limit do
  local batch = redis.call('ZRANGEBYLEX', ix .. name, lo, hi, 'LIMIT', 0, limit + 1)
  if #batch == 0 then break end
  for _, uid in ipairs(batch) do
    local k = up .. uid .. '}'
    local cur = redis.call('GET', k)
    if cur and (want_slug == '' or cur == want_slug)
        and (want_flow == '' or flow_of(cur) == want_flow) then
      out[#out + 1] = {uid, cur, redis.call('GET', k .. ':previous'),
                       redis.call('GET', k .. ':back_to'),
                       tonumber(redis.call('GET', k .. ':version') or '0'),
                       redis.call('PTTL', k)}
      if #out > limit then break end
    end
  end
  lo = '(' .. batch[#batch]
end
return out
