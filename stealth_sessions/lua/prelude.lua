-- Shared by every script (prepended by store.py). Key layout: see keys.py.
-- Per-user scripts get one key, the user's current-slug key k; the user's other keys are
-- named from it (same hash tag, so the same cluster slot). ARGV[1] of per-user scripts is the
-- store's settings, '<expiry ms or empty>|<history length>|<index prefix>', ARGV[2] now in ms
-- (the caller's clock). Every argument costs a little on each call, so the user id is not
-- one: it is read back from the key.
--
-- k:indexed holds <mode><slug>: the slug the indexes list the user under, after a mode
-- character, '1' when the user's keys carry an expiry and '0' when they do not. Comparing it
-- with the current slug tells whether an operator changed the slug by hand.
-- Every redis.call costs: the hot paths are kept to a handful.

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
  return {k, k .. ':previous', k .. ':back_to', k .. ':version', k .. ':history', k .. ':indexed'}
end

local function marker_slug(marker)
  return marker and string.sub(marker, 2)
end

-- The slug the indexes list the user under (false: none). Without a marker, the user's keys
-- may have expired (or been deleted) before a purge dropped them from the indexes: then the
-- expiry bookkeeping still knows the slug.
local function indexed_slug(ix, uid, marker)
  if marker then return marker_slug(marker) end
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

-- Bring the user's keys in line with the configured expiry (ttl ms, or false: none) and the
-- marker in line with slug. old: the marker before this script ran; written: whether the
-- script already wrote the new one. The expiry index's score need only be a lower bound of
-- the user's expiry (purge_expired re-scores a user found alive when it comes due), so a
-- slide writes it only when it gets earlier, and slug_of only changes with the slug.
local function settle(k, ix, uid, slug, ttl, now, old, written)
  local new = (ttl and '1' or '0') .. slug
  if not written and old ~= new then redis.call('SET', k .. ':indexed', new) end
  if ttl then
    for _, key in ipairs(user_keys(k)) do redis.call('PEXPIRE', key, ttl) end
    if old ~= new then
      redis.call('ZADD', ix .. 'expiry', now + ttl, uid)
      redis.call('HSET', ix .. 'slug_of', uid, slug)  -- how purge_expired finds the indexes
    else
      -- LT: only an earlier expiry (SESSION_TTL lowered) rewrites the score.
      redis.call('ZADD', ix .. 'expiry', 'LT', now + ttl, uid)
    end
  elseif old and string.sub(old, 1, 1) == '1' then
    for _, key in ipairs(user_keys(k)) do redis.call('PERSIST', key) end
    redis.call('ZREM', ix .. 'expiry', uid)
    redis.call('HDEL', ix .. 'slug_of', uid)
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
        -- Persisted by hand: while the marker says the keys should expire, the next slide
        -- gives them an expiry again, so look again later; else the user is done with.
        local marker = redis.call('GET', up .. uid .. '}:indexed')
        if marker and string.sub(marker, 1, 1) == '1' then
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
