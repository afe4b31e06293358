package history

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// The Lua scripts Redis runs. Both touch exactly the two keys of one
// stream (KEYS[1] the Redis Stream, KEYS[2] its hash), which share a hash
// tag, so they run unchanged on Redis Cluster; a shard channel the append
// SPUBLISHes on has that hash tag too.
//
// Offsets are stream entry IDs "<offset>-0", so "the events after offset
// n" is one XRANGE from "<n+1>" (an incomplete ID means "<n+1>-0"). Lua
// numbers are doubles: offsets are exact up to 2^53, far beyond what a
// stream reaches.

// luaEnsure creates the stream's epoch when its hash is missing. A hash
// lost while its stream survived (maxmemory eviction) must not let old
// entries pass for the new epoch's: the stream is deleted with it.
const luaEnsure = `
local function ensure(newEpoch, ttl)
  local m = redis.call('HMGET', KEYS[2], 'e', 'o')
  if m[1] then return m[1], tonumber(m[2] or '0') end
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'e', newEpoch, 'o', 0)
  redis.call('PEXPIRE', KEYS[2], ttl)
  return newEpoch, 0
end
`

// appendSrc is Append. ARGV: new epoch (used only if the stream has
// none), MAXLEN, TTL in ms, data, channel ("" publishes nothing), stream
// name, "s" to SPUBLISH on a shard channel (in the keys' slot) or "p" to
// PUBLISH. It increments the offset, XADDs the data at "<offset>-0" with
// MAXLEN ~, sets the TTL of both keys and publishes the live envelope (see
// EncodeLive): one atomic step, so the history's order is the order
// subscribers see. Returns {epoch, offset}.
const appendSrc = luaEnsure + `
local e = ensure(ARGV[1], ARGV[3])
local o = redis.call('HINCRBY', KEYS[2], 'o', 1)
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], o .. '-0', 'd', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
if ARGV[5] ~= '' then
  local cmd = 'PUBLISH'
  if ARGV[7] == 's' then cmd = 'SPUBLISH' end
  redis.call(cmd, ARGV[5], 'h1\n' .. ARGV[6] .. '\n' .. e .. '\n' .. o .. '\n' .. ARGV[4])
end
return {e, o}
`

// positionSrc is Position: the epoch and last offset, creating the epoch
// (offset 0, with the TTL) when the stream has none. ARGV: new epoch, TTL
// in ms. Returns {epoch, offset}.
const positionSrc = luaEnsure + `
local e, o = ensure(ARGV[1], ARGV[2])
return {e, o}
`

// scripts holds Redis's scripts; immutable after newScripts.
type scripts struct {
	append, position *redis.Script
}

func newScripts() scripts {
	return scripts{append: redis.NewScript(appendSrc), position: redis.NewScript(positionSrc)}
}

// run runs s: EVALSHA, then EVAL when the server does not have the script
// cached (after a restart, a failover or SCRIPT FLUSH; per node on
// Cluster). go-redis's Script.Run does exactly that.
func run(ctx context.Context, rdb redis.UniversalClient, s *redis.Script, keys []string, args ...any) (any, error) {
	return s.Run(ctx, rdb, keys, args...).Result()
}
