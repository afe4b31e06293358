package inbound

import "github.com/redis/go-redis/v9"

// enqueueScript appends a message unless the partition is at its cap: the
// check and the XADD are one atomic step, so concurrent producers never
// push a partition past MaxLen, and nothing is ever trimmed.
//
// KEYS[1] partition; ARGV[1] MaxLen, ARGV[2] message JSON.
// Returns the entry id, or nil when full.
var enqueueScript = redis.NewScript(`
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return false end
return redis.call('XADD', KEYS[1], '*', 'm', ARGV[2])
`)

// touchScript re-claims an entry for the consumer holding it, setting its
// delivery count and idle time: Extend (same count, idle 0), Retry (count
// + 1, idle 0) and Release (count - 1, idle = the visibility timeout, so
// it is claimable at once). The owner check and the XCLAIM are atomic, so
// a consumer never takes back a message another consumer claimed.
//
// KEYS[1] partition; ARGV[1] group, ARGV[2] consumer, ARGV[3] entry id,
// ARGV[4] delta of the delivery count, ARGV[5] idle time in ms.
// Returns the new delivery count, or -1 when consumer does not hold it.
var touchScript = redis.NewScript(`
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return -1 end
local n = p[1][4] + tonumber(ARGV[4])
if n < 0 then n = 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', ARGV[5], 'RETRYCOUNT', n, 'JUSTID')
return n
`)
