package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/internal/logfield"
	"github.com/sessiongate/sessiongate/internal/redisbatch"
)

// RedisStore is the [Store] kept in Redis. Each session is one string key,
// prefix+"s:"+handle, holding a sealed envelope; each user has a set of
// handles, prefix+"u:"+userID. Every command and Lua script touches exactly
// one key and nothing spans keys in a transaction, so RedisStore works
// against a single Redis, Sentinel and Redis Cluster alike. It needs Redis
// 6.2 or newer (GETDEL; SET KEEPTTL in scripts). It is safe for concurrent
// use and starts no goroutines while idle. Reads on the handshake path
// (Get, Load) of concurrent callers share round trips (package redisbatch).
type RedisStore struct {
	rdb   redis.UniversalClient
	batch *redisbatch.Batcher
	codec *Codec
	keys  *Keyring
	opts  Options
	touch *toucher
	lua   scripts
}

var _ Store = (*RedisStore)(nil)

// NewRedisStore returns a RedisStore using rdb, which the caller owns and
// closes. It does no I/O.
func NewRedisStore(rdb redis.UniversalClient, codec *Codec, keys *Keyring, opts Options) (*RedisStore, error) {
	if rdb == nil || codec == nil || keys == nil {
		return nil, fmt.Errorf("%w: redis client, codec and keyring are required", ErrInvalidOptions)
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &RedisStore{rdb: rdb, batch: redisbatch.New(rdb, redisbatch.Config{}), codec: codec, keys: keys, opts: o,
		touch: newToucher(o.TouchInterval), lua: newScripts()}, nil
}

func (r *RedisStore) sessionKey(handle string) string { return r.opts.Prefix + "s:" + handle }
func (r *RedisStore) userKey(userID string) string    { return r.opts.Prefix + "u:" + userID }

// Create implements [Store].
func (r *RedisStore) Create(ctx context.Context, userID string, data json.RawMessage) (string, Session, error) {
	if err := checkUserID(userID); err != nil {
		return "", Session{}, err
	}
	data, err := normalizeData(data)
	if err != nil {
		return "", Session{}, err
	}
	token, handle, err := r.codec.New()
	if err != nil {
		return "", Session{}, err
	}
	now := r.opts.Now()
	s := newSession(handle, userID, data, now, r.opts.Lifetime)
	blob, err := r.seal(s)
	if err != nil {
		return "", Session{}, err
	}
	ttl := idleDeadline(now, s.ExpiresAt, r.opts.IdleTTL).Sub(now)
	pipe := r.rdb.Pipeline()
	set := pipe.SetNX(ctx, r.sessionKey(handle), blob, ttl)
	// The index lives as long as its longest-lived member: this session's
	// lifetime, or longer if an older member (created under a longer
	// Lifetime) needs it.
	ukey := r.userKey(userID)
	idx := queueScript(ctx, pipe, r.lua.index, []string{ukey}, handle, r.opts.Lifetime.Milliseconds())
	if err := execScripts(ctx, r.rdb, pipe, []*scriptCall{idx}); err != nil {
		return "", Session{}, fmt.Errorf("session: create: %w", err)
	}
	if !set.Val() {
		// Two 256-bit random ids collided: the RNG is broken.
		return "", Session{}, errors.New("session: create: session key already exists")
	}
	r.touch.mark(handle, now)
	return token, cloneSession(s), nil
}

// Get implements [Store]. A payload that cannot be opened (tampered, moved
// to another key, or sealed with a key no longer in the keyring) is an error
// wrapping [ErrEnvelope] that names the handle.
func (r *RedisStore) Get(ctx context.Context, handle string) (Session, bool, error) {
	if !ValidHandle(handle) {
		return Session{}, false, nil
	}
	cmd := redis.NewStringCmd(ctx, "get", r.sessionKey(handle))
	if err := r.batch.Do(ctx, cmd); err != nil {
		return Session{}, false, fmt.Errorf("session: get %s: %w", logfield.ShortHandle(handle), err)
	}
	blob, err := cmd.Bytes()
	return r.finishRead(ctx, handle, blob, err)
}

// Load implements [Store].
func (r *RedisStore) Load(ctx context.Context, handle string) (Session, bool, error) {
	if !ValidHandle(handle) {
		return Session{}, false, nil
	}
	now := r.opts.Now()
	if !r.touch.due(handle, now) {
		return r.Get(ctx, handle)
	}
	// One round trip: GET and the idle-TTL extension, clamped in the
	// script to the lifetime in the envelope header, so the key never
	// outlives the session (not even for a moment, not even if the
	// connection drops mid-way).
	key := r.sessionKey(handle)
	text, err := r.runBatched(ctx, r.lua.touch, []string{key}, r.opts.IdleTTL.Milliseconds(), now.UnixMilli()).Text()
	blob := []byte(text)
	if err != nil {
		r.touch.forget(handle)
	}
	s, ok, err := r.finishRead(ctx, handle, blob, err)
	if _, v2 := blobExpiry(blob); ok && !v2 {
		// A version 1 envelope has no expiry the script can read: extend
		// here, clamped. The value is clamped, so a failure only means no
		// extension this time.
		if err := r.rdb.PExpire(ctx, key, r.clampedTTL(s, now)).Err(); err != nil {
			r.touch.forget(handle)
		}
	}
	return s, ok, err
}

// clampedTTL is the idle TTL for a touch of s at now: IdleTTL, but never
// past its absolute expiry. Relative, like every TTL this store sets, so
// only Now's notion of time counts.
func (r *RedisStore) clampedTTL(s Session, now time.Time) time.Duration {
	return max(idleDeadline(now, s.ExpiresAt, r.opts.IdleTTL).Sub(now), time.Millisecond)
}

// finishRead turns the reply of a GET/GETEX into a session, destroying it
// if it is past its absolute expiry.
func (r *RedisStore) finishRead(ctx context.Context, handle string, blob []byte, err error) (Session, bool, error) {
	if errors.Is(err, redis.Nil) {
		return Session{}, false, nil
	}
	if err != nil {
		return Session{}, false, fmt.Errorf("session: get %s: %w", logfield.ShortHandle(handle), err)
	}
	s, err := r.open(handle, blob)
	if err != nil {
		return Session{}, false, err
	}
	if s.Expired(r.opts.Now()) {
		if err := r.destroyKnown(ctx, s); err != nil {
			return Session{}, false, err
		}
		return Session{}, false, nil
	}
	return s, true, nil
}

// destroyKnown deletes a session whose payload is at hand.
func (r *RedisStore) destroyKnown(ctx context.Context, s Session) error {
	r.touch.forget(s.Handle)
	pipe := r.rdb.Pipeline()
	pipe.Del(ctx, r.sessionKey(s.Handle))
	pipe.SRem(ctx, r.userKey(s.UserID), s.Handle)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("session: destroy %s: %w", s.Handle, err)
	}
	return nil
}

// Update implements [Store].
func (r *RedisStore) Update(ctx context.Context, s Session) error {
	s, err := checkUpdate(s)
	if err != nil {
		return err
	}
	if s.Expired(r.opts.Now()) {
		if err := r.destroyKnown(ctx, s); err != nil {
			return err
		}
		return ErrNotFound
	}
	blob, err := r.seal(s)
	if err != nil {
		return err
	}
	// Only an existing key is written: a session destroyed meanwhile
	// (logout, revocation) is never written back. Its TTL is kept (an
	// update is not a touch) but clamped to s.ExpiresAt, which may not
	// move later than the stored one.
	res, err := r.lua.update.Run(ctx, r.rdb, []string{r.sessionKey(s.Handle)}, blob, s.ExpiresAt.UnixMilli(), r.opts.Now().UnixMilli()).Int64()
	if err != nil {
		return fmt.Errorf("session: update %s: %w", s.Handle, err)
	}
	switch res {
	case 0:
		return ErrNotFound
	case -1:
		return errExpiryLater
	}
	return nil
}

// Destroy implements [Store].
func (r *RedisStore) Destroy(ctx context.Context, handle string) (bool, error) {
	if !ValidHandle(handle) {
		return false, nil
	}
	r.touch.forget(handle)
	blob, err := r.rdb.GetDel(ctx, r.sessionKey(handle)).Bytes()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("session: destroy %s: %w", logfield.ShortHandle(handle), err)
	}
	// The session is gone. Dropping it from its user's index is
	// housekeeping: if the payload cannot be read or SREM fails, the
	// dangling member is pruned by the next ListUser or DestroyUser.
	if s, err := r.open(handle, blob); err == nil {
		_ = r.rdb.SRem(ctx, r.userKey(s.UserID), handle).Err()
	}
	return true, nil
}

// DestroyUser implements [Store].
func (r *RedisStore) DestroyUser(ctx context.Context, userID string) ([]string, error) {
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	ukey := r.userKey(userID)
	members, err := r.rdb.SMembers(ctx, ukey).Result()
	if err != nil {
		return nil, fmt.Errorf("session: destroy user: %w", err)
	}
	if len(members) == 0 {
		return nil, nil
	}
	pipe := r.rdb.Pipeline()
	dels := make(map[string]*redis.IntCmd, len(members))
	for _, h := range members {
		if ValidHandle(h) {
			r.touch.forget(h)
			dels[h] = pipe.Del(ctx, r.sessionKey(h))
		}
	}
	// SREM exactly what was read, not DEL the index: a session created
	// concurrently stays indexed, so it can still be revoked.
	pipe.SRem(ctx, ukey, toAny(members)...)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("session: destroy user: %w", err)
	}
	var destroyed []string
	for h, c := range dels {
		if c.Val() > 0 {
			destroyed = append(destroyed, h)
		}
	}
	sort.Strings(destroyed)
	return destroyed, nil
}

// ListUser implements [Store]. Sessions are ordered by creation time. A
// session whose payload cannot be opened (e.g. sealed with a key rotated
// out) is left out but not deleted.
func (r *RedisStore) ListUser(ctx context.Context, userID string) ([]Session, error) {
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	ukey := r.userKey(userID)
	members, err := r.rdb.SMembers(ctx, ukey).Result()
	if err != nil {
		return nil, fmt.Errorf("session: list user: %w", err)
	}
	if len(members) == 0 {
		return nil, nil
	}
	var prune []string
	handles := make([]string, 0, len(members))
	pipe := r.rdb.Pipeline()
	gets := make([]*redis.StringCmd, 0, len(members))
	for _, h := range members {
		if !ValidHandle(h) {
			prune = append(prune, h)
			continue
		}
		handles = append(handles, h)
		gets = append(gets, pipe.Get(ctx, r.sessionKey(h)))
	}
	if len(gets) > 0 {
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("session: list user: %w", err)
		}
	}
	now := r.opts.Now()
	var out []Session
	var expired []string
	for i, c := range gets {
		h := handles[i]
		blob, err := c.Bytes()
		if errors.Is(err, redis.Nil) {
			prune = append(prune, h)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("session: list user: %w", err)
		}
		s, err := r.open(h, blob)
		if err != nil {
			continue
		}
		switch {
		case s.UserID != userID:
			prune = append(prune, h)
		case s.Expired(now):
			expired = append(expired, h)
			prune = append(prune, h)
		default:
			out = append(out, s)
		}
	}
	if len(prune) > 0 {
		cleanup := r.rdb.Pipeline()
		for _, h := range expired {
			r.touch.forget(h)
			cleanup.Del(ctx, r.sessionKey(h))
		}
		cleanup.SRem(ctx, ukey, toAny(prune)...)
		if _, err := cleanup.Exec(ctx); err != nil {
			return nil, fmt.Errorf("session: list user: prune: %w", err)
		}
	}
	sortSessions(out)
	return out, nil
}

// Indexed implements [Store]: one SISMEMBER per ref, pipelined. A ref
// with an invalid user id or handle is reported not indexed without a
// command (the store never indexes one).
func (r *RedisStore) Indexed(ctx context.Context, refs []IndexRef) ([]bool, error) {
	out := make([]bool, len(refs))
	pipe := r.rdb.Pipeline()
	cmds := make([]*redis.BoolCmd, len(refs))
	queued := 0
	for i, ref := range refs {
		if checkUserID(ref.UserID) != nil || !ValidHandle(ref.Handle) {
			continue
		}
		cmds[i] = pipe.SIsMember(ctx, r.userKey(ref.UserID), ref.Handle)
		queued++
	}
	if queued == 0 {
		return out, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("session: indexed: %w", err)
	}
	for i, c := range cmds {
		if c != nil {
			out[i] = c.Val()
		}
	}
	return out, nil
}

// Exists implements [Store]. One script per handle, pipelined: it reads
// the expiry in the envelope header (not the payload), so a session past
// its absolute expiry is reported absent and deleted, and a touch is
// clamped to the lifetime. Only version 1 envelopes, which carry no
// expiry in their header, cost one more round trip when touched.
func (r *RedisStore) Exists(ctx context.Context, handles []string, touch bool) ([]bool, error) {
	out := make([]bool, len(handles))
	if len(handles) == 0 {
		return out, nil
	}
	var idle int64
	if touch {
		idle = r.opts.IdleTTL.Milliseconds()
	}
	now := r.opts.Now()
	pipe := r.rdb.Pipeline()
	idx := make([]int, 0, len(handles))
	calls := make([]*scriptCall, 0, len(handles))
	for i, h := range handles {
		if !ValidHandle(h) {
			continue
		}
		idx = append(idx, i)
		calls = append(calls, queueScript(ctx, pipe, r.lua.exists, []string{r.sessionKey(h)}, idle, now.UnixMilli()))
	}
	if len(calls) == 0 {
		return out, nil
	}
	if err := execScripts(ctx, r.rdb, pipe, calls); err != nil {
		return nil, fmt.Errorf("session: exists: %w", err)
	}
	var legacy []int
	for j, c := range calls {
		switch v := c.cmd.Val().(type) {
		case int64:
			out[idx[j]] = v == 1
		case string:
			legacy = append(legacy, j)
		}
	}
	if len(legacy) > 0 {
		if err := r.touchLegacy(ctx, handles, idx, calls, legacy, now, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// touchLegacy finishes Exists(touch) for version 1 envelopes, whose blob the
// script returned: open each, drop those past their lifetime, and extend
// the others' TTL clamped to it, in one pipeline.
func (r *RedisStore) touchLegacy(ctx context.Context, handles []string, idx []int, calls []*scriptCall, legacy []int, now time.Time, out []bool) error {
	pipe := r.rdb.Pipeline()
	extends := make(map[int]*redis.BoolCmd, len(legacy))
	for _, j := range legacy {
		i := idx[j]
		h := handles[i]
		s, err := r.open(h, []byte(calls[j].cmd.Val().(string)))
		switch {
		case err != nil:
			out[i] = true // exists, unreadable (key rotated out): not extended
		case s.Expired(now):
			r.touch.forget(h)
			pipe.Del(ctx, r.sessionKey(h))
			pipe.SRem(ctx, r.userKey(s.UserID), h)
		default:
			extends[i] = pipe.PExpire(ctx, r.sessionKey(h), r.clampedTTL(s, now))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("session: exists: %w", err)
	}
	for i, c := range extends {
		out[i] = c.Val()
	}
	return nil
}

func (r *RedisStore) seal(s Session) ([]byte, error) {
	pt, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("session: encode: %w", err)
	}
	return r.keys.Seal(r.sessionKey(s.Handle), s.ExpiresAt, pt)
}

func (r *RedisStore) open(handle string, blob []byte) (Session, error) {
	pt, err := r.keys.Open(r.sessionKey(handle), blob)
	if err != nil {
		return Session{}, fmt.Errorf("session %s: %w", logfield.ShortHandle(handle), err)
	}
	var s Session
	if err := json.Unmarshal(pt, &s); err != nil {
		return Session{}, fmt.Errorf("session %s: %w: payload: %v", logfield.ShortHandle(handle), ErrEnvelope, err)
	}
	s.Handle = handle
	return s, nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func sortSessions(ss []Session) {
	sort.Slice(ss, func(i, j int) bool {
		if !ss[i].CreatedAt.Equal(ss[j].CreatedAt) {
			return ss[i].CreatedAt.Before(ss[j].CreatedAt)
		}
		return ss[i].Handle < ss[j].Handle
	})
}

// runBatched runs script s with EVALSHA through the batcher (its round trip
// shared with concurrent callers'), falling back to EVAL when the server
// does not have the script cached (after a restart or failover).
func (r *RedisStore) runBatched(ctx context.Context, s *redis.Script, keys []string, args ...any) *redis.Cmd {
	cmd := redisbatch.EvalSha(ctx, s, keys, args...)
	if err := r.batch.Do(ctx, cmd); err != nil {
		cmd.SetErr(err)
		return cmd
	}
	if redisbatch.IsNoScript(cmd.Err()) {
		return s.Eval(ctx, r.rdb, keys, args...) // EVAL caches it for the next EVALSHA
	}
	return cmd
}
