package session

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// forEachRedis runs fn against miniredis and a real redis-server.
func forEachRedis(t *testing.T, fn func(t *testing.T, rdb *redis.Client)) {
	t.Run("miniredis", func(t *testing.T) {
		mr := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { _ = rdb.Close() })
		fn(t, rdb)
	})
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		t.Cleanup(func() { _ = rdb.Close() })
		fn(t, rdb)
	})
}

// failExpire fails every EXPIRE/PEXPIRE the client sends, as a dropped
// connection between two commands would.
type failExpire struct{}

func (failExpire) DialHook(next redis.DialHook) redis.DialHook { return next }
func (failExpire) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); n == "expire" || n == "pexpire" {
			cmd.SetErr(errors.New("injected: connection lost"))
			return cmd.Err()
		}
		return next(ctx, cmd)
	}
}
func (failExpire) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A touch late in a session's life sets a TTL that ends with the lifetime,
// in the same step as the read: there is no window, and no failure, after
// which the key is left to outlive the session.
func TestLoadTouchNeverOutlivesLifetime(t *testing.T) {
	forEachRedis(t, func(t *testing.T, rdb *redis.Client) {
		ctx := context.Background()
		clock := newFakeClock()
		st, err := NewRedisStore(rdb, newTestCodec(t), newTestKeyring(t),
			Options{IdleTTL: time.Hour, Lifetime: 10 * time.Minute, TouchInterval: time.Minute, Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		_, s, err := st.Create(ctx, "alice", nil)
		if err != nil {
			t.Fatal(err)
		}
		rdb.AddHook(failExpire{})
		clock.Add(8 * time.Minute)
		if _, ok, err := st.Load(ctx, s.Handle); err != nil || !ok {
			t.Fatalf("Load = %v, %v", ok, err)
		}
		if ttl := rdb.PTTL(ctx, st.sessionKey(s.Handle)).Val(); ttl <= 0 || ttl > 2*time.Minute+time.Second {
			t.Fatalf("TTL after a touch 8m into a 10m lifetime = %v, want <= 2m", ttl)
		}
	})
}

// The user index lives as long as its longest-lived member: a session
// created under a shorter Lifetime (configuration changed, or another
// instance) does not shorten it, or the older session would drop out of the
// index and escape "revoke all sessions of this user".
func TestIndexTTLNeverShortened(t *testing.T) {
	forEachRedis(t, func(t *testing.T, rdb *redis.Client) {
		ctx := context.Background()
		codec, kr := newTestCodec(t), newTestKeyring(t)
		store := func(lifetime time.Duration) *RedisStore {
			st, err := NewRedisStore(rdb, codec, kr, Options{IdleTTL: 30 * time.Second, Lifetime: lifetime, TouchInterval: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
		long, short := store(10*time.Minute), store(time.Minute)
		_, old, err := long.Create(ctx, "alice", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := short.Create(ctx, "alice", nil); err != nil {
			t.Fatal(err)
		}
		if ttl := rdb.PTTL(ctx, long.userKey("alice")).Val(); ttl < 9*time.Minute || ttl > 10*time.Minute {
			t.Fatalf("index TTL = %v, want ~10m (the older session's lifetime)", ttl)
		}
		// And a longer one extends it, up to that session's lifetime.
		if _, _, err := store(20*time.Minute).Create(ctx, "alice", nil); err != nil {
			t.Fatal(err)
		}
		if ttl := rdb.PTTL(ctx, long.userKey("alice")).Val(); ttl < 19*time.Minute || ttl > 20*time.Minute {
			t.Fatalf("index TTL = %v, want ~20m", ttl)
		}
		destroyed, err := short.DestroyUser(ctx, "alice")
		if err != nil || len(destroyed) != 3 || !strings.Contains(strings.Join(destroyed, ","), old.Handle) {
			t.Fatalf("DestroyUser = %v, %v; want all 3 sessions", destroyed, err)
		}
	})
}

// Sessions sealed before the expiry joined the envelope header (version 1)
// still load, and every touch of them is clamped too.
func TestLegacyEnvelopeTouchClamped(t *testing.T) {
	forEachRedis(t, func(t *testing.T, rdb *redis.Client) {
		ctx := context.Background()
		clock := newFakeClock()
		codec, kr := newTestCodec(t), newTestKeyring(t)
		st, err := NewRedisStore(rdb, codec, kr,
			Options{IdleTTL: time.Hour, Lifetime: 10 * time.Minute, TouchInterval: time.Minute, Now: clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		legacy := func(user string) Session {
			t.Helper()
			_, handle, err := codec.New()
			if err != nil {
				t.Fatal(err)
			}
			s := newSession(handle, user, nil, clock.Now(), 10*time.Minute)
			pt, _ := json.Marshal(s)
			if err := rdb.Set(ctx, st.sessionKey(handle), sealV1(t, kr, st.sessionKey(handle), pt), 10*time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
			if err := rdb.SAdd(ctx, st.userKey(user), handle).Err(); err != nil {
				t.Fatal(err)
			}
			return s
		}
		ttl := func(h string) time.Duration { return rdb.PTTL(ctx, st.sessionKey(h)).Val() }
		a, b := legacy("alice"), legacy("alice")
		clock.Add(8 * time.Minute)
		if got, ok, err := st.Load(ctx, a.Handle); err != nil || !ok || got.UserID != "alice" {
			t.Fatalf("Load(v1) = %+v, %v, %v", got, ok, err)
		}
		if d := ttl(a.Handle); d <= 0 || d > 2*time.Minute+time.Second {
			t.Fatalf("TTL after Load of a v1 session 8m into 10m = %v, want <= 2m", d)
		}
		if got, err := st.Exists(ctx, []string{b.Handle, a.Handle}, true); err != nil || !got[0] || !got[1] {
			t.Fatalf("Exists(touch, v1) = %v, %v", got, err)
		}
		if d := ttl(b.Handle); d <= 0 || d > 2*time.Minute+time.Second {
			t.Fatalf("TTL after Exists(touch) of a v1 session 8m into 10m = %v, want <= 2m", d)
		}
		clock.Add(2*time.Minute + time.Second)
		if got, err := st.Exists(ctx, []string{b.Handle}, true); err != nil || got[0] {
			t.Fatalf("Exists(touch, v1) past the lifetime = %v, %v; want absent", got, err)
		}
		if d := ttl(b.Handle); d > 0 {
			t.Fatalf("v1 session past its lifetime still stored, TTL %v", d)
		}
	})
}

// New envelopes carry the session's absolute expiry in their header, which
// is what the scripts clamp to.
func TestEnvelopeHeaderCarriesExpiry(t *testing.T) {
	st, _, rdb := newMiniStore(t, newTestKeyring(t))
	_, s, err := st.Create(context.Background(), "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := rdb.Get(context.Background(), st.sessionKey(s.Handle)).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if exp, ok := blobExpiry(blob); !ok || !exp.Equal(s.ExpiresAt.Truncate(time.Millisecond)) {
		t.Fatalf("header expiry = %v, %v; want %v", exp, ok, s.ExpiresAt)
	}
}
