-- One shard's part of a page by activity: the newest index members after a cursor, merged
-- from the slugs asked for. KEYS: sessions, slugs. ARGV: scope ('all', 'flow' or 'slug'),
-- the flow or slug, the cursor ('<inv>|<user id>', '' = from the start), how many, the
-- expiry cut (inv, '' = none). Returns up to that many members '<slug>|<inv>|<user id>',
-- newest first. Each slug's range is already in that order, and is read as the merge
-- consumes it: the call reads about what it returns, plus a small share of the page a slug.
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
-- A slug's range, read on demand, each read twice the one before and no more than the page
-- still needs; list.inv and list.uid: its next member's (nil: exhausted).
local function advance(list, need)
  list.at = list.at + 1
  if not list.items[list.at] and not list.done then
    local size = math.max(1, math.min(need, list.size))
    list.size = 2 * list.size
    local batch = redis.call('ZRANGEBYLEX', KEYS[1], list.lo, list.hi, 'LIMIT', 0, size)
    list.items, list.at = batch, 1
    if #batch > 0 then list.lo = '(' .. batch[#batch] end
    list.done = #batch < size
  end
  local item = list.items[list.at]
  if item then
    list.inv = string.sub(item, list.skip, list.skip + 10)
    list.uid = string.sub(item, list.skip + 12)
  end
  return item ~= nil
end
local function newer(a, b)
  return a.inv < b.inv or (a.inv == b.inv and bytes_lt(a.uid, b.uid))
end
-- The slugs' ranges in a binary heap by their next member, newest on top: a page of N from S
-- slugs costs N log S comparisons. Each range is first read a share of the page at a time
-- (a page of 100 over 60 slugs reads 3 a slug, not 100), then twice as many each time.
local heap = {}
local function sift_down(i)
  local n = #heap
  while true do
    local l, r, top = 2 * i, 2 * i + 1, i
    if l <= n and newer(heap[l], heap[top]) then top = l end
    if r <= n and newer(heap[r], heap[top]) then top = r end
    if top == i then return end
    heap[i], heap[top] = heap[top], heap[i]
    i = top
  end
end
local first = math.min(want, math.floor(want / #slugs) + 2)
for _, slug in ipairs(slugs) do
  local list = {
    lo = cursor == '' and ('[' .. slug .. '|') or ('(' .. slug .. '|' .. cursor),
    hi = cut == '' and ('(' .. slug .. '}') or ('(' .. slug .. '|' .. cut),
    skip = #slug + 2, items = {}, at = 0, done = false, size = first,
  }
  if advance(list, first) then heap[#heap + 1] = list end
end
for i = math.floor(#heap / 2), 1, -1 do sift_down(i) end
local out = {}
while #out < want and #heap > 0 do
  local best = heap[1]
  out[#out + 1] = best.items[best.at]
  if not advance(best, want - #out) then
    heap[1] = heap[#heap]
    heap[#heap] = nil
  end
  sift_down(1)
end
return out
