-- The slow path of get (with an expiry to slide, or a slug changed by hand) and of peek.
-- ARGV[3]: '1' for get (slides, re-indexes), '0' for peek (reads only).
-- Returns false without a session, else {3, current, previous, back_to, version, pttl}.
-- KEYS[2], given only by callers that want it (the HTTP API): the user's steps hash; then
-- the reply is {-1, steps} without a session, else the row with HGETALL steps appended.
local k, now = KEYS[1], tonumber(ARGV[2])
local ttl, _, ix, uid = settings(k)
local function none()
  if KEYS[2] then return {-1, redis.call('HGETALL', KEYS[2])} end
  return false
end
local v = read_user(k)
local cur, prev, back = v[1], v[2], v[3]
local mode, ver, islug = parse_meta(k, cur, v[4])
if ARGV[3] == '1' then
  local old = cur and indexed_slug(ix, uid, islug) or islug or false
  local new_ver = ver
  if old ~= cur then
    -- A slug written or deleted by hand (redis-cli) is a write: index it, count a version.
    reindex(ix, uid, old, cur, now)
    if not cur then
      redis.call('DEL', k .. ':meta')
      return none()
    end
    new_ver = ver + 1
  end
  if cur then
    settle(k, ix, uid, cur, new_ver, ttl, now, mode, ver, islug, prev, back)
    ver = new_ver
  end
end
if not cur then return none() end
-- A get has just given the keys the full expiry: no need to ask for it.
local pttl = (ARGV[3] == '1' and ttl) or redis.call('PTTL', k)
local row = {3, cur, prev, back, ver, pttl}
if KEYS[2] then row[7] = redis.call('HGETALL', KEYS[2]) end
return row
