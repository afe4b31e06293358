package session

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/internal/logfield"
)

func newMiniStore(t *testing.T, kr *Keyring) (*RedisStore, *miniredis.Miniredis, redis.UniversalClient) {
	t.Helper()
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	s, err := NewRedisStore(rdb, newTestCodec(t), kr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s, mr, rdb
}

// authenticate is the gateway's flow for a cookie: Parse, then Load.
func authenticate(ctx context.Context, c *Codec, st Store, token string) (Session, bool, error) {
	handle, err := c.Parse(token)
	if err != nil {
		return Session{}, false, err
	}
	return st.Load(ctx, handle)
}

func TestBadTokensCostNoRedisCommand(t *testing.T) {
	ctx := context.Background()
	st, mr, _ := newMiniStore(t, newTestKeyring(t))
	tok, s, err := st.Create(ctx, "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	foreignCodec, _ := NewCodec([]byte(strings.Repeat("w", 32)))
	foreign, _, _ := foreignCodec.New()
	tests := []struct {
		name, token string
	}{
		{name: "forged tag", token: flipChar(tok, len(tok)-3)},
		{name: "forged id", token: flipChar(tok, 3)},
		{name: "truncated", token: tok[:len(tok)-2]},
		{name: "garbage", token: "garbage"},
		{name: "empty", token: ""},
		{name: "wrong secret", token: foreign},
		{name: "handle", token: s.Handle},
	}
	// Warm the connection pool, so that connection set-up does not count.
	if _, ok, err := authenticate(ctx, st.codec, st, tok); err != nil || !ok {
		t.Fatalf("valid token: %v, %v", ok, err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := mr.CommandCount()
			_, ok, err := authenticate(ctx, st.codec, st, tc.token)
			if !errors.Is(err, ErrInvalidToken) || ok {
				t.Fatalf("authenticate = %v, %v; want ErrInvalidToken", ok, err)
			}
			if n := mr.CommandCount() - before; n != 0 {
				t.Fatalf("a rejected token cost %d Redis commands", n)
			}
		})
	}
	// Control: the count does move for a real token.
	before := mr.CommandCount()
	if _, ok, err := authenticate(ctx, st.codec, st, tok); err != nil || !ok {
		t.Fatalf("valid token: %v, %v", ok, err)
	}
	if n := mr.CommandCount() - before; n != 1 {
		t.Fatalf("valid token cost %d commands, want 1", n)
	}
}

func TestBlobMovedToAnotherSessionDoesNotOpen(t *testing.T) {
	ctx := context.Background()
	st, _, rdb := newMiniStore(t, newTestKeyring(t))
	_, alice, _ := st.Create(ctx, "alice", nil)
	_, mallory, _ := st.Create(ctx, "mallory", nil)
	blob, err := rdb.Get(ctx, st.sessionKey(alice.Handle)).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	// An attacker with Redis write access copies alice's blob under the key
	// of a session whose cookie they hold.
	if err := rdb.Set(ctx, st.sessionKey(mallory.Handle), blob, 0).Err(); err != nil {
		t.Fatal(err)
	}
	_, ok, err := st.Get(ctx, mallory.Handle)
	if !errors.Is(err, ErrEnvelope) || ok {
		t.Fatalf("Get of a moved blob = %v, %v; want ErrEnvelope", ok, err)
	}
	// The error names the handle in its log form (shortened), never whole.
	if short := logfield.ShortHandle(mallory.Handle); !strings.Contains(err.Error(), short) || strings.Contains(err.Error(), mallory.Handle) {
		t.Fatalf("error %q does not name the handle as %s", err, short)
	}
}

func TestStoreKeyRotation(t *testing.T) {
	ctx := context.Background()
	oldK, newK := key(7), key(8)
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	codec := newTestCodec(t)
	store := func(keys ...[]byte) *RedisStore {
		s, err := NewRedisStore(rdb, codec, newTestKeyring(t, keys...), Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	_, s, err := store(oldK).Create(ctx, "alice", json.RawMessage(`{"v":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := store(newK).Get(ctx, s.Handle); !errors.Is(err, ErrEnvelope) || !strings.Contains(err.Error(), "unknown key id") {
		t.Fatalf("new key alone: %v", err)
	}
	rotated := store(newK, oldK)
	got, ok, err := rotated.Get(ctx, s.Handle)
	if err != nil || !ok {
		t.Fatalf("[new, old]: %v, %v", ok, err)
	}
	// An update re-seals with the new key; then the old key can go.
	if err := rotated.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := store(newK).Get(ctx, s.Handle); err != nil || !ok {
		t.Fatalf("after re-seal, [new] alone: %v, %v", ok, err)
	}
	// ListUser skips what it cannot open instead of failing the listing.
	if l, err := store(key(9)).ListUser(ctx, "alice"); err != nil || len(l) != 0 {
		t.Fatalf("ListUser with a foreign key = %v, %v", l, err)
	}
}

// argLog records every command's arguments.
type argLog struct {
	mu   sync.Mutex
	cmds [][]any
}

func (l *argLog) DialHook(next redis.DialHook) redis.DialHook { return next }
func (l *argLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		l.mu.Lock()
		l.cmds = append(l.cmds, cmd.Args())
		l.mu.Unlock()
		return next(ctx, cmd)
	}
}
func (l *argLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		l.mu.Lock()
		for _, c := range cmds {
			l.cmds = append(l.cmds, c.Args())
		}
		l.mu.Unlock()
		return next(ctx, cmds)
	}
}

// TestEveryCommandTouchesOneKey is the Redis Cluster rule: no command may
// name two keys (they could live in different hash slots), every script
// declares exactly one key (and its source uses only KEYS[1]), and no
// transaction or keyspace scan is used.
func TestEveryCommandTouchesOneKey(t *testing.T) {
	ctx := context.Background()
	st, _, rdb := newMiniStore(t, newTestKeyring(t))
	log := &argLog{}
	rdb.(*redis.Client).AddHook(log)
	_, a, _ := st.Create(ctx, "alice", nil)
	_, b, _ := st.Create(ctx, "alice", nil)
	_, _, _ = st.Load(ctx, a.Handle)
	_, _, _ = st.Get(ctx, a.Handle)
	_ = st.Update(ctx, a)
	_, _ = st.Exists(ctx, []string{a.Handle, b.Handle}, false)
	_, _ = st.Exists(ctx, []string{a.Handle, b.Handle}, true)
	_, _ = st.ListUser(ctx, "alice")
	_, _ = st.Indexed(ctx, []IndexRef{{UserID: "alice", Handle: a.Handle}, {UserID: "alice", Handle: b.Handle}})
	_, _ = st.Destroy(ctx, a.Handle)
	_, _ = st.DestroyUser(ctx, "alice")
	if len(log.cmds) < 10 {
		t.Fatalf("only %d commands recorded", len(log.cmds))
	}
	for _, src := range []string{touchSrc, existsSrc, updateSrc, indexSrc} {
		if strings.Count(src, "KEYS[") != strings.Count(src, "KEYS[1]") {
			t.Fatalf("script uses a key other than KEYS[1]:\n%s", src)
		}
	}
	for _, args := range log.cmds {
		name := strings.ToLower(fmt.Sprint(args[0]))
		switch name {
		case "multi", "exec", "scan", "keys":
			t.Fatalf("forbidden command %v", args)
		case "hello", "client", "ping", "select", "auth":
			continue // connection set-up
		case "eval", "evalsha":
			// A script declares its keys; Cluster routes it by them.
			if fmt.Sprint(args[2]) != "1" {
				t.Fatalf("script %v declares %v keys, want 1", args[:3], args[2])
			}
		}
		keys := 0
		for _, a := range args[1:] {
			if s, ok := a.(string); ok && strings.HasPrefix(s, DefaultPrefix) {
				keys++
			}
		}
		if keys != 1 {
			t.Fatalf("command %v names %d keys, want 1", args, keys)
		}
	}
}

func TestNewRedisStoreRejects(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	codec, kr := newTestCodec(t), newTestKeyring(t)
	tests := []struct {
		name  string
		rdb   redis.UniversalClient
		codec *Codec
		kr    *Keyring
		opts  Options
	}{
		{name: "nil client", codec: codec, kr: kr},
		{name: "nil codec", rdb: rdb, kr: kr},
		{name: "nil keyring", rdb: rdb, codec: codec},
		{name: "negative idle", rdb: rdb, codec: codec, kr: kr, opts: Options{IdleTTL: -time.Second}},
		{name: "touch >= idle", rdb: rdb, codec: codec, kr: kr, opts: Options{IdleTTL: time.Minute, TouchInterval: time.Minute}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if s, err := NewRedisStore(tc.rdb, tc.codec, tc.kr, tc.opts); !errors.Is(err, ErrInvalidOptions) || s != nil {
				t.Fatalf("NewRedisStore = %v, %v; want ErrInvalidOptions", s, err)
			}
		})
	}
}
