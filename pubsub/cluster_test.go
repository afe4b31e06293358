package pubsub

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// cuttableBus is a Bus whose Publish can be cut, like a network partition
// between this instance and Redis.
type cuttableBus struct {
	Bus
	cut atomic.Bool
}

func (b *cuttableBus) Publish(ctx context.Context, e Event) error {
	if b.cut.Load() {
		return errCut
	}
	return b.Bus.Publish(ctx, e)
}

// transitions records OnLiveness calls.
type transitions struct {
	mu  sync.Mutex
	got []bool
}

func (tr *transitions) add(live bool) {
	tr.mu.Lock()
	tr.got = append(tr.got, live)
	tr.mu.Unlock()
}

func (tr *transitions) equal(want ...bool) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return slices.Equal(tr.got, want)
}

// fastCluster returns a Cluster with test intervals on bus. Beats are fast
// so the tests are quick; the windows that turn a late beat into a state
// change (an instance gone, liveness lost) are wide, so a machine under heavy
// load that delays a beat by a few hundred milliseconds adds no transition
// the tests would have to forgive.
func fastCluster(t *testing.T, bus Bus, id string, conns int) *Cluster {
	t.Helper()
	return NewCluster(bus, ClusterConfig{InstanceID: id, Addr: id + ":8080", Interval: 20 * time.Millisecond,
		MissedBeats: 50, LivenessTimeout: 2 * time.Second}, func() InstanceInfo { return InstanceInfo{Connections: conns, ID: "ignored"} },
		zaptest.NewLogger(t).Named(id))
}

// runCluster runs c until the returned stop is called or the test ends.
func runCluster(t *testing.T, c *Cluster) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(waitFor):
				t.Errorf("Cluster.Run did not return")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// observeAll runs bus with a handler that forwards every event to cs, and
// waits for its subscription.
func observeAll(t *testing.T, bus callbackBus, cs ...*Cluster) {
	t.Helper()
	subscribed := make(chan struct{}, 1)
	bus.OnSubscribed(func() {
		select {
		case subscribed <- struct{}{}:
		default:
		}
	})
	runBus(t, bus, func(_ context.Context, e Event) {
		for _, c := range cs {
			c.Observe(e)
		}
	})
	select {
	case <-subscribed:
	case <-time.After(waitFor):
		t.Fatal("bus did not subscribe")
	}
}

// find returns the view entry for id.
func find(view []InstanceView, id string) (InstanceView, bool) {
	for _, v := range view {
		if v.ID == id {
			return v, true
		}
	}
	return InstanceView{}, false
}

func TestClusterInstancesSeeEachOtherAndGo(t *testing.T) {
	bus := NewLocalBus(zaptest.NewLogger(t))
	a, b := fastCluster(t, bus, "gw-a", 3), fastCluster(t, bus, "gw-b", 5)
	observeAll(t, bus, a, b)
	runCluster(t, a)
	stopB := runCluster(t, b)

	eventually(t, "both instances in both views", func() bool {
		for _, c := range []*Cluster{a, b} {
			v := c.View()
			if len(v) != 2 || !v[0].Alive || !v[1].Alive {
				return false
			}
		}
		return true
	})
	v := a.View()
	if v[0].ID != "gw-a" || v[1].ID != "gw-b" {
		t.Fatalf("view not sorted by id: %+v", v)
	}
	if !v[0].Self || v[1].Self {
		t.Fatalf("Self flags wrong: %+v", v)
	}
	if v[1].Connections != 5 || v[1].Addr != "gw-b:8080" || v[1].StartedAt.IsZero() || v[1].LastSeen.IsZero() {
		t.Fatalf("gw-b as seen by gw-a: %+v", v[1])
	}

	b.SetDraining(context.Background())
	eventually(t, "gw-b draining in gw-a's view", func() bool {
		v, ok := find(a.View(), "gw-b")
		return ok && v.Draining
	})

	stopB()
	eventually(t, "gw-b gone in gw-a's view", func() bool {
		v, ok := find(a.View(), "gw-b")
		return ok && !v.Alive
	})
	if self, _ := find(a.View(), "gw-a"); !self.Alive {
		t.Fatalf("gw-a marked itself gone")
	}
}

func TestClusterLivenessFollowsTheBus(t *testing.T) {
	local := NewLocalBus(zaptest.NewLogger(t))
	bus := &cuttableBus{Bus: local}
	c := fastCluster(t, bus, "gw-a", 0)
	var tr transitions
	c.OnLiveness(tr.add)
	observeAll(t, local, c)
	if c.Live() {
		t.Fatal("Live before any heartbeat came back")
	}
	runCluster(t, c)

	eventually(t, "liveness established", func() bool { return c.Live() && tr.equal(true) })
	bus.cut.Store(true)
	eventually(t, "liveness lost", func() bool { return !c.Live() && tr.equal(true, false) })
	bus.cut.Store(false)
	eventually(t, "liveness restored", func() bool { return c.Live() && tr.equal(true, false, true) })
	if n := c.LivenessLost(); n != 1 {
		t.Fatalf("LivenessLost = %d after one loss, want 1", n)
	}
}

func TestClusterLivenessLostWhenNeverEstablished(t *testing.T) {
	local := NewLocalBus(zaptest.NewLogger(t))
	bus := &cuttableBus{Bus: local}
	bus.cut.Store(true)
	c := fastCluster(t, bus, "gw-a", 0)
	var tr transitions
	c.OnLiveness(tr.add)
	observeAll(t, local, c)
	runCluster(t, c)
	eventually(t, "liveness reported lost", func() bool { return tr.equal(false) })
	if n := c.LivenessLost(); n != 1 {
		t.Fatalf("LivenessLost = %d, want 1 (never established counts as lost)", n)
	}
	bus.cut.Store(false)
	eventually(t, "liveness established", func() bool { return c.Live() && tr.equal(false, true) })
}

func TestClusterIgnoresDuplicateInstanceID(t *testing.T) {
	c := fastCluster(t, NewLocalBus(zaptest.NewLogger(t)), "gw-a", 0)
	// Another process configured with the same id: its heartbeats must not
	// count as this instance's own.
	c.Observe(Event{Kind: KindHeartbeat, Origin: "gw-a", Instance: &InstanceInfo{ID: "gw-a",
		StartedAt: time.Unix(1, 0)}})
	if c.Live() {
		t.Fatal("a foreign heartbeat with this instance's id made it live")
	}
	if len(c.View()) != 0 {
		t.Fatalf("view = %+v, want empty", c.View())
	}
	c.Observe(Event{Kind: KindSessionRevoked, Origin: "x", Handle: "h"})
	if len(c.View()) != 0 {
		t.Fatal("non-heartbeat event changed the view")
	}
}

func TestClusterLivenessOverRedis(t *testing.T) {
	srv := redistest.Start(t)
	bus := newRedisBusT(t, srv, RedisConfig{PublishTimeout: 100 * time.Millisecond})
	a := fastCluster(t, bus, "gw-a", 0)
	var tr transitions
	a.OnLiveness(tr.add)
	observeAll(t, bus, a)
	runCluster(t, a)

	eventually(t, "liveness established", func() bool { return a.Live() && tr.equal(true) })
	srv.Stop()
	eventually(t, "liveness lost with redis down", func() bool { return !a.Live() && tr.equal(true, false) })
	srv.Restart()
	eventually(t, "liveness restored with redis back", func() bool { return a.Live() && tr.equal(true, false, true) })
}
