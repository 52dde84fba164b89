-- Shared by every script (prepended by store.py). Key layout: see keys.py.
-- Per-user scripts get one key, the user's current-slug key; the user's other keys are named
-- from it (same hash tag, so the same cluster slot).

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function flow_of(slug)
  return string.match(slug, '^([%a_][%w_]*)%->[%a_][%w_]*$')
end

local function user_keys(k)
  return {k, k .. ':previous', k .. ':back_to', k .. ':version', k .. ':history'}
end

-- Bring the indexes in line with the user's current slug (false: the user has no session).
-- Returns whether anything changed.
local function reindex(ix, uid, slug)
  local old = redis.call('HGET', ix .. 'slug_of', uid)
  if old == slug then return false end
  if old then
    redis.call('ZREM', ix .. 'slug:' .. old, uid)
    local f = flow_of(old)
    if f then redis.call('ZREM', ix .. 'flow:' .. f, uid) end
    if redis.call('HINCRBY', ix .. 'counts', old, -1) <= 0 then
      redis.call('HDEL', ix .. 'counts', old)
    end
  end
  if slug then
    redis.call('ZADD', ix .. 'slug:' .. slug, 0, uid)
    local f = flow_of(slug)
    if f then redis.call('ZADD', ix .. 'flow:' .. f, 0, uid) end
    redis.call('HINCRBY', ix .. 'counts', slug, 1)
    redis.call('HSET', ix .. 'slug_of', uid, slug)
    if not old then redis.call('ZADD', ix .. 'all', 0, uid) end
  else
    redis.call('HDEL', ix .. 'slug_of', uid)
    redis.call('ZREM', ix .. 'all', uid)
    redis.call('ZREM', ix .. 'expiry', uid)
  end
  return true
end

-- Give all of the user's keys the same expiry (ttl in ms) and record it for purge_expired.
local function expire_all(k, ix, uid, ttl, now)
  for _, key in ipairs(user_keys(k)) do redis.call('PEXPIRE', key, ttl) end
  redis.call('ZADD', ix .. 'expiry', now + ttl, uid)
end

-- With no expiry configured: clear any expiry left from an earlier setting (had_ttl: the
-- current key had one before this write).
local function persist_all(k, ix, uid, had_ttl)
  if had_ttl then
    for _, key in ipairs(user_keys(k)) do redis.call('PERSIST', key) end
    redis.call('ZREM', ix .. 'expiry', uid)
  end
end

-- Drop from the indexes the users whose keys Redis has expired (up: user key prefix).
local function purge_expired(ix, up)
  local now = now_ms()
  while true do
    local due = redis.call('ZRANGEBYSCORE', ix .. 'expiry', '-inf', now, 'LIMIT', 0, 1000)
    if #due == 0 then return end
    for _, uid in ipairs(due) do
      local pttl = redis.call('PTTL', up .. uid .. '}')
      if pttl == -2 then
        reindex(ix, uid, false)
      elseif pttl == -1 then
        redis.call('ZREM', ix .. 'expiry', uid)
      else
        redis.call('ZADD', ix .. 'expiry', now + pttl, uid)
      end
    end
  end
end
