package pubsub

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// TestClusterResubscribesSilentSubscription: the subscription stays on a
// server that answers PING but no longer receives what this instance
// publishes (the address now leads elsewhere, as after a failover that
// left the old node reachable). Only the own heartbeat can tell; the
// instance must subscribe again, where its publishes go, by itself.
func TestClusterResubscribesSilentSubscription(t *testing.T) {
	oldSrv, newSrv := redistest.Start(t), redistest.Start(t)
	var target atomic.Value
	target.Store(oldSrv.Addr())
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:       []string{"redis.invalid:6379"}, // every dial goes to target
		DialTimeout: time.Second, MaxRetries: 1,
		Dialer: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, target.Load().(string))
		},
	})
	t.Cleanup(func() { _ = rdb.Close() })
	bus := NewRedisBus(rdb, RedisConfig{Channel: "test:events"}, zaptest.NewLogger(t))
	c := NewCluster(bus, ClusterConfig{InstanceID: "gw-a", Interval: 50 * time.Millisecond,
		LivenessTimeout: time.Second}, nil, zaptest.NewLogger(t))
	var tr transitions
	c.OnLiveness(tr.add)
	observeAll(t, bus, c)
	runCluster(t, c)
	eventually(t, "liveness established", c.Live)

	target.Store(newSrv.Addr())
	// Publishes reconnect to the new server; the subscription is not a
	// "normal" client, so it stays on the old one and keeps answering PING.
	if reply, err := oldSrv.Do("CLIENT KILL TYPE normal"); err != nil || reply == ":0" {
		t.Fatalf("CLIENT KILL TYPE normal = %q, %v; want the publishing connection killed", reply, err)
	}
	eventually(t, "liveness lost", func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return len(tr.got) >= 2 && !tr.got[1]
	})
	eventually(t, "liveness restored", c.Live)
	numsub := func(srv *redistest.Server) int64 {
		n, err := newClient(t, srv.Addr()).PubSubNumSub(context.Background(), "test:events").Result()
		if err != nil {
			t.Fatal(err)
		}
		return n["test:events"]
	}
	if o, n := numsub(oldSrv), numsub(newSrv); o != 0 || n != 1 {
		t.Fatalf("PUBSUB NUMSUB old=%d new=%d, want 0 and 1", o, n)
	}
}
