package presence

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// An instance's two keys share a slot whatever its id (a brace in the id
// must not split the hash tag), and user records spread over slots.
func TestRedisKeysSlots(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: startCluster(t).Addr()})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	r := NewRedis(rdb, RedisConfig{})
	slot := func(k string) int64 {
		s, err := rdb.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, inst := range []string{"gw-1", "a}b", "{x}", "}", "日本"} {
		if a, b := slot(r.usersKey(inst)), slot(r.indexKey(inst)); a != b {
			t.Errorf("instance %q: keys in slots %d and %d", inst, a, b)
		}
	}
	if r.usersKey("gw-1") != "sessiongate:presence:{gw-1}:users" {
		t.Errorf("users key %q", r.usersKey("gw-1"))
	}
	slots := map[int64]bool{}
	for _, u := range []string{"alice", "bob", "carol", "dave", "erin", "frank"} {
		slots[slot(r.userKey(u))] = true
	}
	if len(slots) < 2 {
		t.Errorf("user records all in one slot")
	}
}

// The instance's records expire TTL after the last refresh, so a crashed
// instance that nobody purges leaves nothing behind for long; a user's
// empty record keeps only its sequence, for EmptyUserTTL.
func TestRedisTTLs(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	r := NewRedis(rdb, RedisConfig{TTL: 40 * time.Second, EmptyUserTTL: 50 * time.Second})
	if _, err := r.Replace(ctx, "a", []Change{ch("alice", 1, 1)}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{r.usersKey("a"), r.indexKey("a")} {
		if ttl := rdb.PTTL(ctx, k).Val(); ttl <= 30*time.Second || ttl > 40*time.Second {
			t.Fatalf("%s: ttl %v", k, ttl)
		}
	}
	if ttl := rdb.PTTL(ctx, r.userKey("alice")).Val(); ttl != -1 {
		t.Fatalf("online user's record has ttl %v", ttl)
	}
	mustWrite(t, r, "a", ch("alice", 0, 0))
	if ttl := rdb.PTTL(ctx, r.userKey("alice")).Val(); ttl <= 40*time.Second || ttl > 50*time.Second {
		t.Fatalf("empty user's record: ttl %v", ttl)
	}
}

// A node whose script cache is empty (restart, failover) answers NOSCRIPT:
// the write falls back to EVAL instead of failing.
func TestRedisScriptCacheFlushed(t *testing.T) {
	srv := redistest.Start(t)
	s := newRedisStore(t, srv)
	ctx := context.Background()
	if _, err := s.Replace(ctx, "a", nil); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, s, "a", ch("alice", 1, 1))
	if r, err := srv.Do("SCRIPT FLUSH"); err != nil || r != "+OK" {
		t.Fatalf("SCRIPT FLUSH: %q %v", r, err)
	}
	if got := kinds(mustWrite(t, s, "a", ch("alice", 0, 0))); len(got) != 1 || got[0] != "alice-" {
		t.Fatalf("after SCRIPT FLUSH: %v", got)
	}
	if _, err := srv.Do("SCRIPT FLUSH"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Refresh(ctx, "a"); err != nil {
		t.Fatalf("refresh after SCRIPT FLUSH: %v", err)
	}
	if _, err := srv.Do("SCRIPT FLUSH"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Stale(ctx, time.Hour); err != nil {
		t.Fatalf("stale after SCRIPT FLUSH: %v", err)
	}
}
