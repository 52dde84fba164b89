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
-- Byte order, as Redis orders members (Lua's < on strings follows the locale: used only on
-- the activity's lowercase hex digits, which every locale orders alike).
local function bytes_lt(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
-- A slug's range, read on demand; list.inv and list.uid: its next member's (nil: exhausted).
local function advance(list)
  list.at = list.at + 1
  if not list.items[list.at] and not list.done then
    local batch = redis.call('ZRANGEBYLEX', KEYS[1], list.lo, list.hi, 'LIMIT', 0, CHUNK)
    list.items, list.at = batch, 1
    if #batch > 0 then list.lo = '(' .. batch[#batch] end
    list.done = #batch < CHUNK
  end
  local item = list.items[list.at]
  if item then
    list.inv = string.sub(item, list.skip, list.skip + 10)
    list.uid = string.sub(item, list.skip + 12)
  end
  return item ~= nil
end
local lists = {}
for _, slug in ipairs(slugs) do
  local list = {
    lo = cursor == '' and ('[' .. slug .. '|') or ('(' .. slug .. '|' .. cursor),
    hi = cut == '' and ('(' .. slug .. '}') or ('(' .. slug .. '|' .. cut),
    skip = #slug + 2, items = {}, at = 0, done = false,
  }
  if advance(list) then lists[#lists + 1] = list end
end
local out = {}
while #out < want and #lists > 0 do
  local best, best_at = lists[1], 1
  for i = 2, #lists do
    local list = lists[i]
    if list.inv < best.inv or (list.inv == best.inv and bytes_lt(list.uid, best.uid)) then
      best, best_at = list, i
    end
  end
  out[#out + 1] = best.items[best.at]
  if not advance(best) then table.remove(lists, best_at) end
end
return out
