package presence

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
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

// A write costs one HSET and one ZADD per batch of users present, and
// one HDEL and one ZREM per batch of users gone, besides each user's
// script: 100 users are four batches of writeBatch (32).
func TestRedisWriteCommandsPerBatch(t *testing.T) {
	srv := redistest.Start(t)
	s := newRedisStore(t, srv)
	ctx := context.Background()
	var on, off []Change
	for i := range 100 {
		on = append(on, ch(fmt.Sprintf("u%03d", i), 1, 1))
		off = append(off, ch(fmt.Sprintf("u%03d", i), 0, 0))
	}
	if _, err := s.Replace(ctx, "a", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Do("CONFIG RESETSTAT"); err != nil {
		t.Fatal(err)
	}
	if ts := mustWrite(t, s, "a", on...); len(ts) != 100 {
		t.Fatalf("%d online transitions, want 100", len(ts))
	}
	if ts := mustWrite(t, s, "a", off...); len(ts) != 100 {
		t.Fatalf("%d offline transitions, want 100", len(ts))
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	info, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	// The counts include the scripts' own calls: a user's script runs
	// HSET twice when the user comes online (counts, sequence), HSET and
	// HDEL once when it goes.
	for cmd, want := range map[string]int{"hset": 4 + 300, "zadd": 4, "hdel": 4 + 100, "zrem": 4, "evalsha": 200} {
		m := regexp.MustCompile(`cmdstat_` + cmd + `:calls=(\d+)`).FindStringSubmatch(info)
		if m == nil {
			t.Errorf("%s: no calls", cmd)
			continue
		}
		if n, _ := strconv.Atoi(m[1]); n != want {
			t.Errorf("%s: %d calls, want %d", cmd, n, want)
		}
	}
}
