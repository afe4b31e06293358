package presence

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisConfig configures a [Redis] store. Zero fields take their defaults.
type RedisConfig struct {
	// Prefix starts every key (REDIS_KEY_PREFIX). Defaults to
	// "sessiongate:".
	Prefix string
	// TTL is how long an instance's records outlive its last refresh
	// (they are normally purged long before, by the surviving instances).
	// Defaults to 1m.
	TTL time.Duration
	// EmptyUserTTL is how long a user's record, holding only its
	// transition sequence, outlives the user's last connection. Defaults
	// to 1h.
	EmptyUserTTL time.Duration
}

func (c RedisConfig) withDefaults() RedisConfig {
	if c.Prefix == "" {
		c.Prefix = "sessiongate:"
	}
	if c.TTL <= 0 {
		c.TTL = time.Minute
	}
	if c.EmptyUserTTL <= 0 {
		c.EmptyUserTTL = time.Hour
	}
	return c
}

// Redis is the Redis [Store]. Its keys, built for Redis Cluster (no
// command or script touches two keys):
//
//	<prefix>presence:{<inst>}:users  hash   user -> "conns:sessions", and the marker field ""
//	<prefix>presence:{<inst>}:index  zset   users (score 0, ordered by id: paging)
//	<prefix>presence:user:{<user>}   hash   inst -> "conns:sessions", and "" -> seq
//	<prefix>presence:instances       zset   inst -> last refresh (Redis time, ms)
//
// The two keys of an instance share its hash tag, so they live on one
// node. The instance keys expire TTL after the last refresh; a user's
// record expires EmptyUserTTL after it became empty. Safe for concurrent
// use.
type Redis struct {
	rdb redis.UniversalClient
	cfg RedisConfig
}

// NewRedis returns a presence store over rdb.
func NewRedis(rdb redis.UniversalClient, cfg RedisConfig) *Redis {
	return &Redis{rdb: rdb, cfg: cfg.withDefaults()}
}

// markerField is the field that keeps an instance's hash in existence
// while it holds no user: its absence means the records were purged or
// expired. No user id is empty.
const markerField = ""

// tag is inst as a hash tag's content: inst itself unless it holds a
// brace, which would end or split the tag (then its hex form).
func tag(inst string) string {
	if strings.ContainsAny(inst, "{}") || inst == "" {
		return "x" + hex.EncodeToString([]byte(inst))
	}
	return inst
}

func (r *Redis) usersKey(inst string) string {
	return r.cfg.Prefix + "presence:{" + tag(inst) + "}:users"
}

func (r *Redis) indexKey(inst string) string {
	return r.cfg.Prefix + "presence:{" + tag(inst) + "}:index"
}

func (r *Redis) userKey(user string) string {
	return r.cfg.Prefix + "presence:user:{" + user + "}"
}

func (r *Redis) registryKey() string { return r.cfg.Prefix + "presence:instances" }

// Write implements [Store]: one pipelined round trip for the whole batch
// (in Redis Cluster, one per node, sent concurrently).
func (r *Redis) Write(ctx context.Context, inst string, changes []Change) ([]Transition, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	return r.write(ctx, inst, changes, false)
}

// Replace implements [Store].
func (r *Redis) Replace(ctx context.Context, inst string, all []Change) ([]Transition, error) {
	return r.write(ctx, inst, all, true)
}

// writeBatch is how many users one round trip of Write or Replace
// carries. A batch's scripts run back to back on the Redis server, and
// its replies are read here in one go: a larger batch holds up every other
// client of that server (a revocation's DEL and PUBLISH among them) and
// this instance's other goroutines for longer. A user script takes the
// server about 7 µs (INFO commandstats in TestRedisWriteCommandsPerBatch
// on the 2-core development machine): 32 are about 0.2 ms.
const writeBatch = 32

// write writes changes writeBatch users per round trip, in order; replace
// first drops the instance's keys and sets its marker (in the first
// batch, even when there is no change). It stops at the first batch that
// fails and returns the transitions of the batches before it and of the
// failed batch's users that were written.
func (r *Redis) write(ctx context.Context, inst string, changes []Change, replace bool) ([]Transition, error) {
	var out []Transition
	for start := 0; start == 0 || start < len(changes); start += writeBatch {
		ts, err := r.writeOne(ctx, inst, changes[start:min(start+writeBatch, len(changes))], replace && start == 0)
		out = append(out, ts...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// writeOne runs, in one pipeline, the instance-side writes of changes (one
// HSET and one ZADD for the users present, one HDEL and one ZREM for the
// users gone) and their user scripts; replace first drops the instance's
// keys and sets its marker. No user appears twice in changes.
func (r *Redis) writeOne(ctx context.Context, inst string, changes []Change, replace bool) ([]Transition, error) {
	uk, ik := r.usersKey(inst), r.indexKey(inst)
	pipe := r.rdb.Pipeline()
	if replace {
		pipe.Del(ctx, uk)
		pipe.Del(ctx, ik)
		pipe.HSet(ctx, uk, markerField, "1")
	}
	vals := make([]string, len(changes))
	var (
		set  []any
		add  []redis.Z
		gone []string
	)
	for i, c := range changes {
		if c.Conns > 0 {
			vals[i] = c.encode()
			set = append(set, c.UserID, vals[i])
			add = append(add, redis.Z{Member: c.UserID})
		} else if !replace {
			gone = append(gone, c.UserID)
		}
	}
	if len(set) > 0 {
		pipe.HSet(ctx, uk, set...)
		pipe.ZAdd(ctx, ik, add...)
	}
	if len(gone) > 0 {
		members := make([]any, len(gone))
		for i, u := range gone {
			members[i] = u
		}
		pipe.HDel(ctx, uk, gone...)
		pipe.ZRem(ctx, ik, members...)
	}
	scripts := make([]*redis.Cmd, len(changes))
	for i, c := range changes {
		scripts[i] = userScript.EvalSha(ctx, pipe, []string{r.userKey(c.UserID)}, inst, vals[i], r.cfg.EmptyUserTTL.Milliseconds())
	}
	pipe.PExpire(ctx, uk, r.cfg.TTL)
	pipe.PExpire(ctx, ik, r.cfg.TTL)
	_, _ = pipe.Exec(ctx) // each command's error is read below
	r.retryNoScript(ctx, inst, changes, scripts)
	out := make([]Transition, 0, 2)
	var firstErr error
	for i, cmd := range scripts {
		t, ok, err := transitionOf(cmd, changes[i].UserID, "connect", "disconnect")
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if ok {
			out = append(out, t)
		}
	}
	if firstErr != nil {
		return out, fmt.Errorf("presence: write: %w", firstErr)
	}
	return out, nil
}

// retryNoScript runs again, with EVAL, the user scripts that failed with
// NOSCRIPT (an empty script cache: a restarted or failed-over node),
// replacing their commands in scripts; the caller reads each script's own
// error, as after the first pipeline.
func (r *Redis) retryNoScript(ctx context.Context, inst string, changes []Change, scripts []*redis.Cmd) {
	var retry []int
	for i, cmd := range scripts {
		if err := cmd.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			retry = append(retry, i)
		}
	}
	if len(retry) == 0 {
		return
	}
	pipe := r.rdb.Pipeline()
	for _, i := range retry {
		c := changes[i]
		v := ""
		if c.Conns > 0 {
			v = c.encode()
		}
		scripts[i] = userScript.Eval(ctx, pipe, []string{r.userKey(c.UserID)}, inst, v, r.cfg.EmptyUserTTL.Milliseconds())
	}
	_, _ = pipe.Exec(ctx)
}

// transitionOf reads a user script's reply.
func transitionOf(cmd *redis.Cmd, user, onReason, offReason string) (Transition, bool, error) {
	vals, err := cmd.Int64Slice()
	if err != nil {
		return Transition{}, false, err
	}
	if len(vals) != 2 {
		return Transition{}, false, errors.New("presence: unexpected script reply")
	}
	switch vals[0] {
	case 1:
		return Transition{UserID: user, Online: true, Seq: vals[1], Reason: onReason}, true, nil
	case -1:
		return Transition{UserID: user, Online: false, Seq: vals[1], Reason: offReason}, true, nil
	}
	return Transition{}, false, nil
}

// Refresh implements [Store]: one round trip.
func (r *Redis) Refresh(ctx context.Context, inst string) (bool, error) {
	uk, ik := r.usersKey(inst), r.indexKey(inst)
	pipe := r.rdb.Pipeline()
	has := pipe.HExists(ctx, uk, markerField)
	pipe.PExpire(ctx, uk, r.cfg.TTL)
	pipe.PExpire(ctx, ik, r.cfg.TTL)
	reg := registerScript.EvalSha(ctx, pipe, []string{r.registryKey()}, inst)
	_, _ = pipe.Exec(ctx)
	if err := reg.Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		err = registerScript.Eval(ctx, r.rdb, []string{r.registryKey()}, inst).Err()
		if err != nil {
			return false, fmt.Errorf("presence: refresh: %w", err)
		}
	} else if err != nil {
		return false, fmt.Errorf("presence: refresh: %w", err)
	}
	ok, err := has.Result()
	if err != nil {
		return false, fmt.Errorf("presence: refresh: %w", err)
	}
	return ok, nil
}

// purgeBatch is how many users one purge round trip removes.
const purgeBatch = 500

// Purge implements [Store]: HSCAN over the instance's users, one
// pipelined batch of user scripts per purgeBatch users, then the
// instance's keys and registry entry go.
func (r *Redis) Purge(ctx context.Context, inst string) ([]Transition, error) {
	uk, ik := r.usersKey(inst), r.indexKey(inst)
	var out []Transition
	var cursor uint64
	for {
		kv, next, err := r.rdb.HScan(ctx, uk, cursor, "*", purgeBatch).Result()
		if err != nil {
			return out, fmt.Errorf("presence: purge: %w", err)
		}
		var users []string
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] != markerField {
				users = append(users, kv[i])
			}
		}
		ts, err := r.removeUsers(ctx, inst, users)
		out = append(out, ts...)
		if err != nil {
			return out, err
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	pipe := r.rdb.Pipeline()
	pipe.Del(ctx, uk)
	pipe.Del(ctx, ik)
	pipe.ZRem(ctx, r.registryKey(), inst)
	if _, err := pipe.Exec(ctx); err != nil {
		return out, fmt.Errorf("presence: purge: %w", err)
	}
	return out, nil
}

// removeUsers removes inst from the records of users.
func (r *Redis) removeUsers(ctx context.Context, inst string, users []string) ([]Transition, error) {
	if len(users) == 0 {
		return nil, nil
	}
	changes := make([]Change, len(users))
	scripts := make([]*redis.Cmd, len(users))
	pipe := r.rdb.Pipeline()
	for i, u := range users {
		changes[i] = Change{UserID: u}
		scripts[i] = userScript.EvalSha(ctx, pipe, []string{r.userKey(u)}, inst, "", r.cfg.EmptyUserTTL.Milliseconds())
	}
	_, _ = pipe.Exec(ctx)
	r.retryNoScript(ctx, inst, changes, scripts)
	var out []Transition
	for i, cmd := range scripts {
		t, ok, err := transitionOf(cmd, users[i], "", "instance gone")
		if err != nil {
			return out, fmt.Errorf("presence: purge: %w", err)
		}
		if ok {
			out = append(out, t)
		}
	}
	return out, nil
}

// Stale implements [Store].
func (r *Redis) Stale(ctx context.Context, older time.Duration) ([]string, error) {
	ids, err := staleScript.Run(ctx, r.rdb, []string{r.registryKey()}, older.Milliseconds()).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("presence: stale instances: %w", err)
	}
	return ids, nil
}

// User implements [Store]: one HGETALL.
func (r *Redis) User(ctx context.Context, userID string) ([]Placement, error) {
	m, err := r.rdb.HGetAll(ctx, r.userKey(userID)).Result()
	if err != nil {
		return nil, fmt.Errorf("presence: user: %w", err)
	}
	out := make([]Placement, 0, len(m))
	for inst, v := range m {
		if inst == markerField {
			continue
		}
		c, err := decodeCounts(v)
		if err != nil {
			continue // not ours to judge; the owner rewrites it
		}
		out = append(out, Placement{Instance: inst, Counts: c})
	}
	sortPlacements(out)
	return out, nil
}

// Page implements [Store]: per instance one ZRANGE BYLEX of at most limit
// users after the cursor, merged; then per instance one HMGET of the
// chosen users it holds. Two pipelined round trips, O(instances × limit)
// members read, whatever the number of online users.
func (r *Redis) Page(ctx context.Context, instances []string, after string, limit int) ([]User, string, error) {
	if len(instances) == 0 || limit <= 0 {
		return nil, "", nil
	}
	start := "-"
	if after != "" {
		start = "(" + after
	}
	pipe := r.rdb.Pipeline()
	ranges := make([]*redis.StringSliceCmd, len(instances))
	for i, inst := range instances {
		ranges[i] = pipe.ZRangeArgs(ctx, redis.ZRangeArgs{Key: r.indexKey(inst), Start: start, Stop: "+",
			ByLex: true, Count: int64(limit)})
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, "", fmt.Errorf("presence: page: %w", err)
	}
	seen := map[string][]int{} // user -> indexes of the instances listing it
	for i, cmd := range ranges {
		for _, u := range cmd.Val() {
			seen[u] = append(seen[u], i)
		}
	}
	chosen := make(map[string][]Placement, len(seen))
	for u := range seen {
		chosen[u] = nil
	}
	// Every instance listed at most limit users after the cursor, so the
	// first limit of their union are the first limit users overall. A
	// union of limit or more may continue past them.
	ids, _ := collectPage(chosen, limit)
	next := ""
	if len(seen) >= limit {
		next = ids[len(ids)-1].UserID
	}
	perInst := make([][]string, len(instances))
	for _, u := range ids {
		for _, i := range seen[u.UserID] {
			perInst[i] = append(perInst[i], u.UserID)
		}
	}
	pipe = r.rdb.Pipeline()
	gets := make([]*redis.SliceCmd, len(instances))
	for i, users := range perInst {
		if len(users) > 0 {
			gets[i] = pipe.HMGet(ctx, r.usersKey(instances[i]), users...)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, "", fmt.Errorf("presence: page: %w", err)
	}
	byUser := make(map[string][]Placement, len(ids))
	for i, cmd := range gets {
		if cmd == nil {
			continue
		}
		for j, v := range cmd.Val() {
			s, ok := v.(string)
			if !ok {
				continue // left between the two round trips
			}
			c, err := decodeCounts(s)
			if err != nil || c.Conns == 0 {
				continue
			}
			u := perInst[i][j]
			byUser[u] = append(byUser[u], Placement{Instance: instances[i], Counts: c})
		}
	}
	out := make([]User, 0, len(ids))
	for _, u := range ids {
		if ps := byUser[u.UserID]; len(ps) > 0 {
			sortPlacements(ps)
			out = append(out, User{UserID: u.UserID, Instances: ps})
		}
	}
	return out, next, nil
}
