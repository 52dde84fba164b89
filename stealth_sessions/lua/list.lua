-- A page of sessions, exact: only users whose session exists and matches; expired ones are
-- purged from the indexes first. ARGV[1..4]: index prefix, user key prefix, now ms, limit.
-- ARGV[5] = 'activity': newest activity first, merged from the slug indexes.
--   ARGV[6]: 'all' | 'flow' | 'slug', ARGV[7]: the flow or slug ('' for 'all'),
--   ARGV[8], ARGV[9]: the cursor, score and user id of the last row seen ('' = first page).
-- ARGV[5] = 'prefix': in user id order, from the 'all' index.
--   ARGV[6], ARGV[7]: lex range; ARGV[8], ARGV[9]: wanted slug, wanted flow ('' = any);
--   ARGV[10]: how many users to examine at most (a filter that matches few users of a
--   prefix stops there, with a cursor, instead of reading them all).
-- Returns {rows, resume}: up to limit + 1 rows {user_id, current, previous, back_to, version,
-- pttl, activity ms (nil when unknown), number of pending scheduled steps}; resume (prefix only):
-- the last user id examined when the examination budget ran out first, else false.
local ix, up, limit, mode = ARGV[1], ARGV[2], tonumber(ARGV[4]), ARGV[5]
purge_expired(ix, up, tonumber(ARGV[3]))
local want = limit + 1

local function row(uid, slug, activity)
  local k = up .. uid .. '}'
  local v = read_user(k)
  if not v[1] or (slug and v[1] ~= slug) then return nil end
  local _, version = parse_meta(k, v[1], v[4])
  return {uid, v[1], v[2], v[3], version, redis.call('PTTL', k),
          activity or false, redis.call('HLEN', k .. ':steps')}
end

-- Byte order, as Redis orders members (Lua's < on strings follows the locale).
local function bytes_lt(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end

if mode == 'prefix' then
  local lo, hi, want_slug, want_flow = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
  local budget, out, last = tonumber(ARGV[10]), {}, nil
  while #out < want and budget > 0 do
    local batch = redis.call('ZRANGEBYLEX', ix .. 'all', lo, hi, 'LIMIT', 0,
                             math.min(want - #out, budget))
    if #batch == 0 then return {out, false} end
    for _, uid in ipairs(batch) do
      budget, last = budget - 1, uid
      local r = row(uid, want_slug ~= '' and want_slug or nil, nil)
      if r and (want_flow == '' or flow_of(r[2]) == want_flow) then
        r[7] = redis.call('ZSCORE', ix .. 'slug:' .. r[2], uid) or false
        out[#out + 1] = r
        if #out == want then break end
      end
    end
    lo = '(' .. last
  end
  if #out < want and #redis.call('ZRANGEBYLEX', ix .. 'all', lo, hi, 'LIMIT', 0, 1) > 0 then
    return {out, last}
  end
  return {out, false}
end

-- 'activity': a k-way merge of the slug indexes (one, a flow's, or all). Each index is read
-- newest first from the cursor on (already in order: score, then member, descending), and a
-- round takes the newest heads until it has enough, then reads their rows.
local slugs = {ARGV[7]}
if ARGV[6] ~= 'slug' then
  slugs = {}
  for _, slug in ipairs(redis.call('SMEMBERS', ix .. 'slugs')) do
    if ARGV[6] == 'all' or flow_of(slug) == ARGV[7] then slugs[#slugs + 1] = slug end
  end
end
local cs, cu = tonumber(ARGV[8]), ARGV[9]
local out = {}
while #out < want do
  local need, lists = want - #out, {}
  for _, slug in ipairs(slugs) do
    local key, list, offset = ix .. 'slug:' .. slug, {slug = slug, at = 1}, 0
    while #list < need do
      local n = need - #list
      local batch = redis.call('ZRANGE', key, cs or '+inf', '-inf', 'BYSCORE', 'REV',
                               'LIMIT', offset, n, 'WITHSCORES')
      for i = 1, #batch, 2 do
        local uid, score = batch[i], tonumber(batch[i + 1])
        -- At the cursor's own score, only the members after it (Redis orders ties by member).
        if not cs or score < cs or bytes_lt(uid, cu) then list[#list + 1] = {score, uid} end
      end
      if #batch < 2 * n then break end
      offset = offset + n
    end
    if #list > 0 then lists[#lists + 1] = list end
  end
  if #lists == 0 then break end
  for _ = 1, need do
    local best
    for _, list in ipairs(lists) do
      local head = list[list.at]
      if head then
        if not best then
          best = list
        else
          local b = best[best.at]
          if head[1] > b[1] or (head[1] == b[1] and bytes_lt(b[2], head[2])) then best = list end
        end
      end
    end
    if not best then break end
    local c = best[best.at]
    best.at = best.at + 1
    cs, cu = c[1], c[2]
    out[#out + 1] = row(c[2], best.slug, c[1])  -- nil (skipped) if the index is stale
  end
end
return {out, false}
