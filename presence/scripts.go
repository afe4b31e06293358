package presence

import "github.com/redis/go-redis/v9"

// userScript sets (ARGV[2] not empty) or removes (empty) instance ARGV[1]'s
// counts in the user's hash KEYS[1] and returns {direction, seq}:
// direction 1 when the user went from no instance to one, -1 when back to
// none, 0 otherwise. The field "" holds the user's transition sequence,
// which is max(previous + 1, Redis time in microseconds): it keeps
// increasing even after an empty record expired (ARGV[3] ms after the user
// left). One key: Redis Cluster safe.
var userScript = redis.NewScript(`
local k, inst, v = KEYS[1], ARGV[1], ARGV[2]
local has = redis.call('HEXISTS', k, '')
local before = redis.call('HLEN', k) - has
if v == '' then
  redis.call('HDEL', k, inst)
else
  redis.call('HSET', k, inst, v)
end
local after = redis.call('HLEN', k) - has
local dir = 0
if before == 0 and after > 0 then dir = 1 elseif before > 0 and after == 0 then dir = -1 end
if dir == 0 then
  if after == 0 then redis.call('PEXPIRE', k, ARGV[3]) end
  return {0, 0}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local seq = tonumber(redis.call('HGET', k, '') or '0') + 1
if now > seq then seq = now end
redis.call('HSET', k, '', string.format('%d', seq))
if dir == 1 then redis.call('PERSIST', k) else redis.call('PEXPIRE', k, ARGV[3]) end
return {dir, seq}
`)

// registerScript records, in the registry sorted set KEYS[1], that
// instance ARGV[1] refreshed now (Redis time, ms), so that staleness is
// judged by one clock whatever the instances' clocks say.
var registerScript = redis.NewScript(`
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), ARGV[1])
return 1
`)

// staleScript returns the members of the registry KEYS[1] whose last
// refresh is more than ARGV[1] ms ago (Redis time).
var staleScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. (now - tonumber(ARGV[1])))
`)
