package pubsub

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// A handler that falls behind delays this instance's own heartbeats (they
// wait in the backlog), so liveness is lost; the subscription still
// delivers, so it must be kept: dropping it would lose what is in flight on
// it. Every message published before, during and after arrives, in order,
// and no gap is reported.
func TestClusterKeepsSubscriptionWhileHandlerIsBehind(t *testing.T) {
	srv := redistest.Start(t)
	bus := newRedisBusT(t, srv, RedisConfig{Buffer: 1 << 16})
	var gaps sync.Mutex
	var gapReasons []string
	bus.OnGap(func(reason string) { gaps.Lock(); gapReasons = append(gapReasons, reason); gaps.Unlock() })
	c := NewCluster(bus, ClusterConfig{InstanceID: "gw-a", Interval: 20 * time.Millisecond,
		LivenessTimeout: 300 * time.Millisecond}, nil, zaptest.NewLogger(t))
	var tr transitions
	c.OnLiveness(tr.add)

	release := make(chan struct{})
	var mu sync.Mutex
	var got []int
	runBus(t, bus, func(_ context.Context, e Event) {
		c.Observe(e)
		if n := seq(e); n >= 0 {
			if n == 0 {
				<-release // the handler falls behind from the first message on
			}
			mu.Lock()
			got = append(got, n)
			mu.Unlock()
		}
	})
	runCluster(t, c)
	eventually(t, "liveness established", c.Live)

	pub := newRedisBusT(t, srv, RedisConfig{})
	n := 0
	publish := func() {
		t.Helper()
		if err := pub.Publish(context.Background(), msg(n)); err != nil {
			t.Fatalf("publish %d: %v", n, err)
		}
		n++
	}
	lost := func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return len(tr.got) >= 2 && !tr.got[len(tr.got)-1]
	}
	// Publish until the own heartbeats, stuck behind the handler, count as
	// lost, then as many again: a dropped subscription would lose some.
	deadline := time.Now().Add(waitFor)
	for !lost() {
		if time.Now().After(deadline) {
			t.Fatal("liveness never lost while the handler was blocked")
		}
		publish()
	}
	for range n + 200 {
		publish()
	}
	close(release)
	eventually(t, "every message delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= n
	})
	mu.Lock()
	for i, v := range got {
		if v != i {
			mu.Unlock()
			t.Fatalf("message %d arrived as %d: lost or reordered (%d of %d delivered)", i, v, len(got), n)
		}
	}
	mu.Unlock()
	eventually(t, "liveness restored", c.Live)
	gaps.Lock()
	defer gaps.Unlock()
	if len(gapReasons) != 0 {
		t.Fatalf("the subscription was dropped while it delivered: gaps %v", gapReasons)
	}
}
