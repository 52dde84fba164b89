-- Shared by every script (prepended by store.py). Key layout: see keys.py.
-- Per-user scripts get one key, the user's current-slug key k; the user's other keys are
-- named from it (same hash tag, so the same cluster slot). ARGV[1] of per-user scripts is the
-- store's settings, '<expiry ms or empty>|<history length>|<index prefix>', ARGV[2] now in ms
-- (the caller's clock). Every argument costs a little on each call, so the user id is not
-- one: it is read back from the key.
--
-- k:meta holds '<mode><version>|<slug>': mode '1' when the user's keys carry an expiry, '0'
-- when they do not; version, the session's write counter; slug, the one the indexes list the
-- user under. Comparing that slug with the current one tells whether an operator changed the
-- current slug by hand. Every redis.call costs: the hot paths are kept to a handful.

-- ttl (ms, or nil: no expiry), history length, index prefix, user id of the user's key k.
local function settings(k)
  local ttl, hlen, ix = string.match(ARGV[1], '^(%d*)|(%d+)|(.*)$')
  -- k is <base>:{<uid>} and ix <base>:idx:, so the user id starts at #ix - 2.
  return tonumber(ttl), tonumber(hlen), ix, string.sub(k, #ix - 2, -2)
end

local function flow_of(slug)
  return string.match(slug, '^([%a_][%w_]*)%->[%a_][%w_]*$')
end

local function user_keys(k)
  return {k, k .. ':previous', k .. ':back_to', k .. ':history', k .. ':meta'}
end

-- What a read needs, in the order of the rows store.py decodes: current, previous, back_to,
-- meta.
local function read_user(k)
  return redis.call('MGET', k, k .. ':previous', k .. ':back_to', k .. ':meta')
end

-- The mode, version and indexed slug of the user at k, from meta as read (cur: the current
-- slug). Mode '1' when the keys carry an expiry, '0' when they do not, nil when they may (a
-- session without meta: set by hand, or written by a build from before meta, which kept its
-- version at k:version, read there on this rare path only). Without a session, version 0.
local function parse_meta(k, cur, meta)
  if meta then
    local mode, version, slug = string.match(meta, '^([01])(%d+)|(.*)$')
    return mode, cur and tonumber(version) or 0, slug
  end
  if not cur then return '0', 0, nil end  -- no keys to bring in line
  return nil, tonumber(redis.call('GET', k .. ':version') or '0') or 0, nil
end

-- meta replaces the k:version and k:indexed keys of a build from before it (written once the
-- meta of a session without one is).
local function drop_legacy(k)
  redis.call('DEL', k .. ':version', k .. ':indexed')
end

-- The slug the indexes list the user under (false: none). Without meta, the user's keys
-- may have expired (or been deleted) before a purge dropped them from the indexes: then the
-- expiry bookkeeping still knows the slug.
local function indexed_slug(ix, uid, slug)
  if slug then return slug end
  return redis.call('HGET', ix .. 'slug_of', uid)
end

-- Move the user from slug old to slug new in the indexes (false: no session). Each slug's
-- index is a ZSET of its users scored by the time (ms) they entered it, their last activity;
-- 'all' lists every user with score 0, for searches by user id prefix (ZRANGEBYLEX).
local function reindex(ix, uid, old, new, now)
  if old == new then return end
  if old then redis.call('ZREM', ix .. 'slug:' .. old, uid) end
  if new then
    redis.call('ZADD', ix .. 'slug:' .. new, now, uid)
    redis.call('SADD', ix .. 'slugs', new)
    if not old then redis.call('ZADD', ix .. 'all', 0, uid) end
  else
    redis.call('ZREM', ix .. 'all', uid)
    redis.call('HDEL', ix .. 'slug_of', uid)
    redis.call('ZREM', ix .. 'expiry', uid)
  end
end

-- The expiry bookkeeping of a user whose keys now expire at now + ttl, at slug (mode, islug:
-- meta as read). The expiry index's score need only be a lower bound of the user's expiry
-- (purge_expired re-scores a user found alive when it comes due), so once meta says the keys
-- expire (the user is in the index), a write or a slide only lowers the score (ZADD LT:
-- SESSION_TTL lowered) and otherwise leaves it, with no reordering; slug_of only changes
-- with the slug.
local function index_expiry(ix, uid, slug, ttl, now, mode, islug)
  if mode == '1' and islug then
    redis.call('ZADD', ix .. 'expiry', 'LT', now + ttl, uid)
    if islug ~= slug then redis.call('HSET', ix .. 'slug_of', uid, slug) end
  else
    redis.call('ZADD', ix .. 'expiry', now + ttl, uid)
    redis.call('HSET', ix .. 'slug_of', uid, slug)  -- how purge_expired finds the indexes
  end
end

-- Back from keys with an expiry to none (mode '1', or no meta: they may have one).
local function unexpire(k, ix, uid)
  for _, key in ipairs(user_keys(k)) do redis.call('PERSIST', key) end
  redis.call('ZREM', ix .. 'expiry', uid)
  redis.call('HDEL', ix .. 'slug_of', uid)
end

-- Bring the keys of a user at slug in line with the configured expiry (ttl ms, or false:
-- none), and meta with (slug, version) (a get, a step_to to the current state, set_back_to).
-- mode, old_version, islug: meta as read; prev, back: whether previous and back_to exist
-- (an absent key needs no expiry).
local function settle(k, ix, uid, slug, version, ttl, now, mode, old_version, islug, prev, back)
  local meta = (ttl and '1' or '0') .. version .. '|' .. slug
  if not mode then drop_legacy(k) end
  if ttl then
    redis.call('SET', k .. ':meta', meta, 'PX', ttl)
    redis.call('PEXPIRE', k, ttl)
    redis.call('PEXPIRE', k .. ':history', ttl)
    if prev then redis.call('PEXPIRE', k .. ':previous', ttl) end
    if back then redis.call('PEXPIRE', k .. ':back_to', ttl) end
    index_expiry(ix, uid, slug, ttl, now, mode, islug)
  else
    if mode ~= '0' or version ~= old_version or islug ~= slug then
      redis.call('SET', k .. ':meta', meta)
    end
    if mode ~= '0' then unexpire(k, ix, uid) end
  end
end

-- Drop from the indexes the users whose keys Redis has expired (up: user key prefix).
local function purge_expired(ix, up, now)
  while true do
    local due = redis.call('ZRANGEBYSCORE', ix .. 'expiry', '-inf', now, 'LIMIT', 0, 1000)
    if #due == 0 then return end
    for _, uid in ipairs(due) do
      local pttl = redis.call('PTTL', up .. uid .. '}')
      if pttl == -2 then
        reindex(ix, uid, redis.call('HGET', ix .. 'slug_of', uid), false, now)
      elseif pttl == -1 then
        -- Persisted by hand: while meta says the keys should expire, the next slide
        -- gives them an expiry again, so look again later; else the user is done with.
        local meta = redis.call('GET', up .. uid .. '}:meta')
        if meta and string.sub(meta, 1, 1) == '1' then
          redis.call('ZADD', ix .. 'expiry', now + 60000, uid)
        else
          redis.call('ZREM', ix .. 'expiry', uid)
          redis.call('HDEL', ix .. 'slug_of', uid)
        end
      else
        redis.call('ZADD', ix .. 'expiry', now + pttl, uid)
      end
    end
  end
end

-- Remove scheduled steps (ids: none = all of the user's), recording why in the user's
-- outcomes list. Returns {id, record, ...} for the steps removed here: one already gone
-- (applied, cancelled meanwhile) is not returned, so callers report each removal once.
local function remove_steps(k, steps_index, uid, now, outcome, reason, keep, ttl, ids)
  local steps, outcomes = k .. ':steps', k .. ':step_outcomes'
  if #ids == 0 then ids = redis.call('HKEYS', steps) end
  local removed = {}
  for _, id in ipairs(ids) do
    local record = redis.call('HGET', steps, id)
    if record then
      redis.call('HDEL', steps, id)
      redis.call('ZREM', steps_index, id .. ':' .. uid)
      redis.call('LPUSH', outcomes,
        cjson.encode({now, id, cjson.decode(record).target, outcome, reason}))
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
