package session

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/internal/redisbatch"
)

// The Lua scripts RedisStore runs. Each touches exactly one key (KEYS[1]),
// so they run unchanged on Redis Cluster. They clamp every TTL they set to
// the session's absolute expiry, which they read in clear from the
// envelope header (see [Keyring]): a session key never outlives its
// lifetime, whichever path extends it. Times are Unix milliseconds on the
// store's clock (Options.Now), passed in, so Redis's own clock never
// decides a lifetime. A version 1 envelope has no expiry in its header: the
// scripts extend nothing for it and hand it back for the store to clamp
// after decrypting.

// luaExpiry is a Lua function: the expiry in the header h of a version 2
// envelope, or nil.
const luaExpiry = `
local function expiry(h)
  if #h < 13 or string.byte(h, 1) ~= 2 then return nil end
  local e = 0
  for i = 6, 13 do e = e * 256 + string.byte(h, i) end
  return e
end
`

// touchSrc is Load's touch: GET plus an idle-TTL extension clamped to the
// lifetime, in one round trip. ARGV: idle TTL, now. Returns the blob or nil.
const touchSrc = luaExpiry + `
local v = redis.call('GET', KEYS[1])
if not v then return false end
local e = expiry(v)
if e then
  local ttl = math.min(tonumber(ARGV[1]), e - tonumber(ARGV[2]))
  if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
end
return v
`

// existsSrc is one handle of Exists. ARGV: idle TTL (0: no touch), now.
// Returns 1 (exists), 0 (absent; a session past its lifetime is deleted),
// or, for a version 1 envelope when touching, the blob.
const existsSrc = luaExpiry + `
local h = redis.call('GETRANGE', KEYS[1], 0, 12)
if h == '' then return 0 end
local idle = tonumber(ARGV[1])
local e = expiry(h)
if not e then
  if idle > 0 then return redis.call('GET', KEYS[1]) end
  return 1
end
local left = e - tonumber(ARGV[2])
if left <= 0 then
  redis.call('DEL', KEYS[1])
  return 0
end
if idle > 0 then redis.call('PEXPIRE', KEYS[1], math.min(idle, left)) end
return 1
`

// updateSrc is Update: replace the blob of an existing key, keeping its
// TTL but never past the new expiry, and never moving the expiry later.
// ARGV: blob, its expiry, now. Returns 1, 0 (no such key) or -1 (the
// expiry would move later).
const updateSrc = luaExpiry + `
local h = redis.call('GETRANGE', KEYS[1], 0, 12)
if h == '' then return 0 end
local ne = tonumber(ARGV[2])
local oe = expiry(h)
if oe and ne > oe then return -1 end
local t = redis.call('PTTL', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
local left = math.max(ne - tonumber(ARGV[3]), 1)
if t < 0 or t > left then redis.call('PEXPIRE', KEYS[1], left) end
return 1
`

// indexSrc adds a handle to a user's index and extends the index's TTL to
// at least ARGV[2]: never shortens it, so a session created under a shorter
// Lifetime (configuration changed) cannot unindex an older, longer-lived
// one and make it unrevocable by user. ARGV: handle, TTL.
const indexSrc = `
redis.call('SADD', KEYS[1], ARGV[1])
local t = redis.call('PTTL', KEYS[1])
if t < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
`

// scripts holds RedisStore's scripts; immutable after newScripts.
type scripts struct {
	touch, exists, update, index *redis.Script
}

func newScripts() scripts {
	return scripts{
		touch:  redis.NewScript(touchSrc),
		exists: redis.NewScript(existsSrc),
		update: redis.NewScript(updateSrc),
		index:  redis.NewScript(indexSrc),
	}
}

// scriptCall is one script run queued in a pipeline.
type scriptCall struct {
	s    *redis.Script
	keys []string
	args []any
	cmd  *redis.Cmd
}

func queueScript(ctx context.Context, pipe redis.Pipeliner, s *redis.Script, keys []string, args ...any) *scriptCall {
	return &scriptCall{s: s, keys: keys, args: args, cmd: s.EvalSha(ctx, pipe, keys, args...)}
}

// execScripts runs pipe. Scripts the server does not have cached (after a
// restart, a failover or SCRIPT FLUSH; per node on Cluster) answer
// NOSCRIPT to EVALSHA: those are sent again with EVAL, in one more
// pipeline, and their calls' cmd replaced. Any other error is returned, as
// is every reply of redis.Nil (a missing key is an answer).
func execScripts(ctx context.Context, rdb redis.UniversalClient, pipe redis.Pipeliner, calls []*scriptCall) error {
	cmds, err := pipe.Exec(ctx)
	if err == nil {
		return nil
	}
	for _, c := range cmds {
		if e := c.Err(); e != nil && !errors.Is(e, redis.Nil) && !redisbatch.IsNoScript(e) {
			return e
		}
	}
	if len(cmds) == 0 {
		return err // the pipeline itself failed (connection, context)
	}
	var retry []*scriptCall
	for _, c := range calls {
		if redisbatch.IsNoScript(c.cmd.Err()) {
			retry = append(retry, c)
		}
	}
	if len(retry) == 0 {
		return nil
	}
	again := rdb.Pipeline()
	for _, c := range retry {
		c.cmd = c.s.Eval(ctx, again, c.keys, c.args...)
	}
	if _, err := again.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	return nil
}
