-- Shared by every script (store.py prepends it). Conventions:
--
-- KEYS: every key a script touches, all of one shard (one Cluster slot). Per-user scripts
-- take, in this order: session, previous, back_to, data, the shard's sessions index, its
-- slugs set, its history dictionary (codes), then what the script needs besides.
--
-- data (<base>:{NN}:data:<user_id>, no expiry: purged with the user) holds
--   '<mode><version>|<inv>|<length of slug>|<slug>' then '\n<entry>' per history entry,
--   newest first. mode: '1' when the user's slug keys carry an expiry, else '0'; version:
--   the write counter; inv: the user's last activity as (2^44 - 1 - ms) in 11 hex digits
--   (see store.inverted), so that newest sorts first; slug: the slug the index lists the
--   user under (a slug set by hand with redis-cli differs from it until picked up).
--   entry: '<at ms, 11 hex digits><code>', code naming in the shard's dictionary the JSON
--   array [method, origin, source, target]; when the dictionary is full, the array itself.
-- codes (<base>:{NN}:codes): JSON array -> code and code -> JSON array.
-- sessions (<base>:{NN}:sessions): a ZSET of score 0, members '<slug>|<inv>|<user_id>':
--   in lex order, by slug, then newest activity first. Counts, pages and the purge of
--   expired users are lex ranges of it.

local MAX_CODES = 10000

-- Interrupt detection: {-4, lock value, ms left} when the user's lock (lock_key) is held by
-- another owner than the caller (owner: the caller's token, '' for none); nil otherwise.
-- Checked before anything is written, in the script that writes (see lua/lock_take.lua).
local function interrupted(lock_key, owner)
  local held = redis.call('GET', lock_key)
  if held and string.sub(held, 1, 33) ~= owner .. '|' then
    return {-4, held, redis.call('PTTL', lock_key)}
  end
  return nil
end

-- The flow of a well-formed slug (nil for anything else).
local function flow_of(slug)
  return string.match(slug, '^([%a_][%w_]*)%->[%a_][%w_]*$')
end

-- A slug set by hand may hold anything: one that could not be told apart inside an index
-- member is listed as '?' (counted, and flagged as unknown, like any unknown slug).
local function index_slug(slug)
  if #slug > 200 or string.find(slug, '[|\n]') then return '?' end
  return slug
end

local function member(slug, inv, uid)
  return index_slug(slug) .. '|' .. inv .. '|' .. uid
end

-- mode, version, inv, slug, entries of a data value (false: none, or unreadable: a value
-- written by hand is ignored, never an error).
local function parse(data)
  if data then
    local mode, ver, inv, len, at = string.match(data, '^([01])(%d+)|(%x+)|(%d+)|()')
    if mode then
      local n = tonumber(len)
      return mode, tonumber(ver), inv, string.sub(data, at, at + n - 1), string.sub(data, at + n)
    end
  end
  return nil, 0, nil, nil, ''
end

local function data_value(mode, ver, inv, slug, entries)
  return mode .. string.format('%d', ver) .. '|' .. inv .. '|' .. #slug .. '|' .. slug .. entries
end

local function read_user(K)
  local v = redis.call('MGET', K[1], K[2], K[3], K[4])
  -- A blank slug (what Stealth writes for "none") reads as absent.
  if v[1] == '' then v[1] = false end
  if v[2] == '' then v[2] = false end
  if v[3] == '' then v[3] = false end
  return v
end

-- Move the user's index entry (old: slug and inv as data has them, nil if not indexed).
local function reindex(K, uid, old_slug, old_inv, slug, inv)
  if old_slug then redis.call('ZREM', K[5], member(old_slug, old_inv, uid)) end
  if slug then
    redis.call('ZADD', K[5], 0, member(slug, inv, uid))
    redis.call('SADD', K[6], index_slug(slug))
  end
end

-- The code of a history entry's JSON array in the shard's dictionary (nil when full).
local function intern(codes, quad)
  local code = redis.call('HGET', codes, quad)
  if code then return code end
  local n = math.floor(redis.call('HLEN', codes) / 2)
  if n >= MAX_CODES then return nil end
  code = tostring(n + 1)
  redis.call('HSET', codes, quad, code, code, quad)
  return code
end

-- entries with entry in front, cut to hlen entries.
local function push_entry(entries, entry, hlen)
  entries = '\n' .. entry .. entries
  local pos = 0
  for _ = 1, hlen + 1 do
    pos = string.find(entries, '\n', pos + 1, true)
    if not pos then return entries end
  end
  return string.sub(entries, 1, pos - 1)
end

-- Give the slug keys the expiry ttl (ms, or false: none; mode: whether they have one).
local function expire_keys(K, ttl, mode, prev, back)
  if ttl then
    redis.call('PEXPIRE', K[1], ttl)
    if prev then redis.call('PEXPIRE', K[2], ttl) end
    if back then redis.call('PEXPIRE', K[3], ttl) end
  elseif mode ~= '0' then
    redis.call('PERSIST', K[1])
    if prev then redis.call('PERSIST', K[2]) end
    if back then redis.call('PERSIST', K[3]) end
  end
end

-- Bring a user at slug cur in line without a transition (a get, a step_to to the current
-- state, set_back_to): index a slug set by hand (a write: the version grows), slide the
-- expiry and the activity with it, bump the version when asked. Returns version, inv.
local function settle(K, uid, v, ttl, now_inv, bump)
  local cur, prev, back = v[1], v[2], v[3]
  local mode, ver, inv, islug, entries = parse(v[4])
  local new_ver, new_inv = ver, inv
  if islug ~= cur then
    reindex(K, uid, islug, inv, cur, now_inv)
    new_ver, new_inv = ver + 1, now_inv
  elseif ttl then
    reindex(K, uid, islug, inv, cur, now_inv)
    new_inv = now_inv
  end
  if bump then new_ver = new_ver + 1 end
  expire_keys(K, ttl, mode, prev, back)
  local new_mode = ttl and '1' or '0'
  if new_ver ~= ver or new_inv ~= inv or new_mode ~= mode then
    redis.call('SET', K[4], data_value(new_mode, new_ver, new_inv, cur, entries))
  end
  return new_ver, new_inv
end

-- Forget the user's index entry and data: their session is gone (expired, deleted by hand).
local function forget(K, uid, v)
  local _, _, inv, islug = parse(v[4])
  if islug then redis.call('ZREM', K[5], member(islug, inv, uid)) end
  redis.call('DEL', K[2], K[3], K[4])
end

-- Remove scheduled steps (ids: none = all of the user's), recording why in the user's
-- outcomes list. steps, due, outcomes: keys. Returns {id, record, ...} for the steps removed
-- here: one already gone (applied, cancelled meanwhile) is not returned, so callers report
-- each removal once.
local function remove_steps(steps, due, outcomes, uid, now, outcome, reason, keep, ttl, ids)
  if #ids == 0 then ids = redis.call('HKEYS', steps) end
  local removed = {}
  for _, id in ipairs(ids) do
    local record = redis.call('HGET', steps, id)
    if record then
      redis.call('HDEL', steps, id)
      redis.call('ZREM', due, id .. ':' .. uid)
      local rec = cjson.decode(record)
      redis.call('LPUSH', outcomes,
        cjson.encode({now, id, rec.target, outcome, reason, rec.retries or 0}))
      removed[#removed + 1] = id
      removed[#removed + 1] = record
    end
  end
  if #removed > 0 then
    redis.call('LTRIM', outcomes, 0, tonumber(keep) - 1)
    redis.call('PEXPIRE', outcomes, ttl)
  end
  return removed
end
