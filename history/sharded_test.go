package history

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/internal/redistest"
	"github.com/sessiongate/sessiongate/internal/shardkey"
)

// On Redis Cluster (redis-server 7.0), a script's SPUBLISH must go to a
// shard channel the script's own node serves: to a channel of another
// node it fails with "non local key" (after the script's earlier writes
// were applied). This is why a sharded user stream's keys carry its
// shard's hash tag. The test pins the server's rule the design rests on.
func TestScriptSPublishMustBeLocal(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3})
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), DialTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	const key = "probe{0}"
	var remote string
	for n := 1; remote == ""; n++ {
		if ch := shardkey.Channel("ev", n); c.MasterOfKey(ch) != c.MasterOfKey(key) {
			remote = ch
		}
	}
	script := "redis.call('SET', KEYS[1], 1); return redis.call('SPUBLISH', ARGV[1], 'x')"
	err := rdb.Eval(ctx, script, []string{key}, remote).Err()
	if err == nil || !strings.Contains(err.Error(), "non local") {
		t.Fatalf("SPUBLISH to another node's channel from a script = %v, want a non local key error", err)
	}
	if err := rdb.Eval(ctx, script, []string{key}, shardkey.Channel("ev", 0)).Err(); err != nil {
		t.Fatalf("SPUBLISH to the script's own slot: %v", err)
	}
}

// With Shards set, a user's events arrive on the user's shard channel, in
// offset order, while several users' appends interleave; the broadcast
// stream keeps the classic channel.
func TestShardedAppendPublishesOnShardChannel(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3})
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), DialTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	const shards = 8
	hh := newRedisHarness(t, rdb, Config{Prefix: "sg:", Shards: shards})
	live := hh.subscribe(t, "sg:events")
	ctx := context.Background()
	users := []string{"alice", "bob", "carol", "dave", "{odd}"}
	const each = 50
	for i := range each {
		for _, u := range users {
			if _, err := hh.h.Append(ctx, UserStream(u), fmt.Appendf(nil, "%d", i), "sg:events"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := hh.h.Append(ctx, Broadcast, []byte("b"), "sg:events"); err != nil {
		t.Fatal(err)
	}
	last := map[string]uint64{}
	for range len(users)*each + 1 {
		select {
		case m := <-live:
			l, err := ParseLive(m)
			if err != nil {
				t.Fatal(err)
			}
			if l.Offset != last[l.Stream]+1 {
				t.Fatalf("%s: offset %d after %d", l.Stream, l.Offset, last[l.Stream])
			}
			last[l.Stream] = l.Offset
		case <-time.After(waitFor):
			t.Fatalf("not every event arrived: %v", last)
		}
	}
	// Where the keys are: in the slot of the user's shard channel.
	for _, u := range users {
		ks := keysOf("sg:", shards, UserStream(u))
		ch := shardkey.Channel("sg:events", shardkey.Of(u, shards))
		if redistest.Slot(ks.stream) != redistest.Slot(ch) || redistest.Slot(ks.meta) != redistest.Slot(ch) {
			t.Fatalf("%s: keys %q %q not in the slot of %q", u, ks.stream, ks.meta, ch)
		}
		if n := rdb.Exists(ctx, ks.stream, ks.meta).Val(); n != 2 {
			t.Fatalf("%s: %d of its keys exist", u, n)
		}
	}
}
