-- A user's history: KEYS: data, codes. ARGV: how many entries at most.
-- Returns {entries, arrays}: the entries, newest first, and for each the JSON array its code
-- names (or false when the entry holds its array itself).
local _, _, _, _, entries = parse(redis.call('GET', KEYS[1]))
local out, arrays = {}, {}
for entry in string.gmatch(entries, '\n([^\n]+)') do
  if #out == tonumber(ARGV[1]) then break end
  out[#out + 1] = entry
  local code = string.sub(entry, 12)
  if string.sub(code, 1, 1) == '[' then
    arrays[#arrays + 1] = false
  else
    arrays[#arrays + 1] = redis.call('HGET', KEYS[2], code) or false
  end
end
return {out, arrays}
