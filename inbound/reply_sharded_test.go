package inbound

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/sessiongate/sessiongate/history"
	"github.com/sessiongate/sessiongate/internal/redistest"
	"github.com/sessiongate/sessiongate/pubsub"
)

// With a sharded bus on Redis Cluster (PUBSUB_SHARDS), a worker's reply,
// published through the history configured with the same shard count,
// reaches the gateway's sharded bus on the user's shard channel, with its
// position.
func TestRedisReplierOnShardedBus(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3})
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), DialTimeout: time.Second, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	const shards = 4
	bus := pubsub.NewShardedBus(rdb, pubsub.ShardedConfig{RedisConfig: pubsub.RedisConfig{Channel: DefaultEventChannel},
		Shards: shards, LivenessInterval: 100 * time.Millisecond}, zaptest.NewLogger(t))
	got := make(chan pubsub.Event, 10)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = bus.Run(ctx, func(_ context.Context, e pubsub.Event) { got <- e }) }()
	t.Cleanup(func() { cancel(); <-done })
	eventually(t, "every shard live", bus.Live)

	r := RedisReplier{History: history.NewRedis(rdb, history.Config{Prefix: "sessiongate:", Shards: shards})}
	to := msg("alice", 1)
	to.Handle = strings.Repeat("ab", 32)
	if err := r.Reply(context.Background(), &to, "echo", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-got:
		if e.Target == nil || e.Target.Handle != to.Handle || e.Stream != "user:alice" || e.Offset != 1 {
			t.Fatalf("event = %+v", e)
		}
	case <-time.After(waitFor):
		t.Fatal("the reply did not reach the sharded bus")
	}
}
