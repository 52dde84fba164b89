-- One shard's part of a page by activity: the newest index members after a cursor, merged
-- from the slugs asked for. KEYS: sessions, slugs. ARGV: scope ('all', 'flow' or 'slug'),
-- the flow or slug, the cursor ('<inv>|<user id>', '' = from the start), how many, the
-- expiry cut (inv, '' = none). Returns up to that many members '<slug>|<inv>|<user id>',
-- newest first. Each slug's range is already in that order, and is read CHUNK members at a
-- time as the merge consumes it: the call reads about what it returns, plus a chunk a slug.
local CHUNK = 32
local scope, name, cursor, want, cut = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local slugs = {name}
if scope ~= 'slug' then
  slugs = {}
  for _, slug in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    if scope == 'all' or flow_of(slug) == name then slugs[#slugs + 1] = slug end
  end
end
-- Byte order, as Redis orders members (Lua's < on strings follows the locale).
local function bytes_lt(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
-- A slug's range, read on demand: list.items[list.at] is its next member (nil: exhausted).
local function refill(list)
  local batch = redis.call('ZRANGEBYLEX', KEYS[1], list.lo, list.hi, 'LIMIT', 0, CHUNK)
  list.items, list.at = batch, 1
  if #batch > 0 then list.lo = '(' .. batch[#batch] end
  list.done = #batch < CHUNK
end
local lists = {}
for _, slug in ipairs(slugs) do
  local list = {
    lo = cursor == '' and ('[' .. slug .. '|') or ('(' .. slug .. '|' .. cursor),
    hi = cut == '' and ('(' .. slug .. '}') or ('(' .. slug .. '|' .. cut),
    skip = #slug + 2,
  }
  refill(list)
  if #list.items > 0 then lists[#lists + 1] = list end
end
local out = {}
while #out < want do
  local best, best_key
  for _, list in ipairs(lists) do
    local item = list.items[list.at]
    if item then
      local key = string.sub(item, list.skip)
      if not best or bytes_lt(key, best_key) then best, best_key = list, key end
    end
  end
  if not best then break end
  out[#out + 1] = best.items[best.at]
  best.at = best.at + 1
  if not best.items[best.at] and not best.done then refill(best) end
end
return out
