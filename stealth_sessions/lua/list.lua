-- ARGV: index prefix, user key prefix, now ms, index name ('all', 'flow:<f>', 'slug:<s>'),
--       lex min, lex max, limit, wanted slug (''), wanted flow ('')
-- Returns up to limit + 1 rows {user_id, current, previous, back_to, version, pttl}:
-- only users whose session exists and matches, so the page is exact.
local ix, up, name, lo, hi = ARGV[1], ARGV[2], ARGV[4], ARGV[5], ARGV[6]
local limit, want_slug, want_flow = tonumber(ARGV[7]), ARGV[8], ARGV[9]
purge_expired(ix, up, tonumber(ARGV[3]))
local out = {}
while #out <= limit do
  local batch = redis.call('ZRANGEBYLEX', ix .. name, lo, hi, 'LIMIT', 0, limit + 1)
  if #batch == 0 then break end
  for _, uid in ipairs(batch) do
    local k = up .. uid .. '}'
    local v = redis.call('MGET', k, k .. ':previous', k .. ':back_to', k .. ':version')
    local cur = v[1]
    if cur and (want_slug == '' or cur == want_slug)
        and (want_flow == '' or flow_of(cur) == want_flow) then
      out[#out + 1] = {uid, cur, v[2], v[3], tonumber(v[4] or '0'), redis.call('PTTL', k)}
      if #out > limit then break end
    end
  end
  lo = '(' .. batch[#batch]
end
return out
