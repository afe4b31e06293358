package pubsub

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// startRedisCluster starts a Redis Cluster of three masters without
// replicas (redistest.StartCluster) and returns the node addresses.
func startRedisCluster(t *testing.T) []string {
	t.Helper()
	return redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3}).Addrs()
}

func TestRedisBusOnRedisCluster(t *testing.T) {
	addrs := startRedisCluster(t)
	// Each instance knows a different seed node; PUBLISH reaches every node.
	a := NewRedisBus(newClient(t, addrs[0], addrs[1], addrs[2]), RedisConfig{}, zaptest.NewLogger(t))
	b := NewRedisBus(newClient(t, addrs[2], addrs[1], addrs[0]), RedisConfig{}, zaptest.NewLogger(t))
	ra, rb := startRecorded(t, a), startRecorded(t, b)
	for i := 0; i < 100; i++ {
		bus := Bus(a)
		if i%2 == 1 {
			bus = b
		}
		if err := bus.Publish(context.Background(), msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Each publisher's events arrive in order; the two publishers' events
	// may interleave differently, as they travel through different nodes.
	for _, r := range []*recorder{ra, rb} {
		last := map[int]int{0: -2, 1: -1}
		for range 100 {
			select {
			case e := <-r.events:
				n := seq(e)
				if n < 0 || n <= last[n%2] {
					t.Fatalf("event %d arrived after %d from the same publisher", n, last[n%2])
				}
				last[n%2] = n
			case <-time.After(waitFor):
				t.Fatalf("only some events received; last per publisher: %v", last)
			}
		}
	}
}
