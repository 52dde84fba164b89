-- ARGV: index prefix, user key prefix. Returns the counts hash, expired users purged first.
purge_expired(ARGV[1], ARGV[2])
return redis.call('HGETALL', ARGV[1] .. 'counts')
