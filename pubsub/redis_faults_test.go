package pubsub

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// connectedClients returns INFO's connected_clients of the server behind
// raw (raw's own connection included).
func connectedClients(t *testing.T, srv *redistest.Server) int {
	t.Helper()
	raw := newClient(t, srv.Addr())
	info, err := raw.Info(context.Background(), "clients").Result()
	_ = raw.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_clients:"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no connected_clients in INFO clients: %q", info)
	return 0
}

// TestRedisBusRepeatedOutagesLeakNothing cuts the subscription again and
// again, each time with the re-SUBSCRIBE refused for a while, so that many
// connections are opened and given up. Afterwards the bus holds one
// connection and no more goroutines than before.
func TestRedisBusRepeatedOutagesLeakNothing(t *testing.T) {
	srv := redistest.Start(t)
	log, logs := observedLogger(t)
	// A subscription counts as stable after one PingInterval; keep it short
	// so that back-to-back outages do not run into the long backoff meant
	// for a flapping subscription.
	bus := NewRedisBus(newClient(t, srv.Addr()), RedisConfig{Channel: "test:events",
		PingInterval: 250 * time.Millisecond}, log)
	r := startRecorded(t, bus)
	if err := bus.Publish(context.Background(), msg(0)); err != nil {
		t.Fatal(err)
	}
	r.next(t, 0) // the publish connection is in the pool from now on
	baseClients := connectedClients(t, srv)
	baseGoroutines := runtime.NumGoroutine()

	const outages = 8
	for i := range outages {
		before := refusals(logs)
		mustDo(t, srv, "ACL SETUSER default -subscribe", "+OK")
		mustDo(t, srv, "CLIENT KILL TYPE pubsub", ":1")
		eventually(t, "refusals", func() bool { return refusals(logs) >= before+2 })
		mustDo(t, srv, "ACL SETUSER default +@all", "+OK")
		eventually(t, "resubscribed", func() bool { return r.count("subscribed") >= i+2 })
		// Let the subscription become stable before the next cut. This only
		// keeps the test fast; under load it is merely slower.
		time.Sleep(300 * time.Millisecond)
	}
	if n := r.count("gap:"); n < outages {
		t.Errorf("%d outages reported %d gaps", outages, n)
	}
	eventually(t, "connections back to the baseline", func() bool {
		return connectedClients(t, srv) <= baseClients
	})
	// A leak per attempt would leave dozens; allow for the runtime's own.
	eventually(t, "goroutines back to the baseline", func() bool {
		return runtime.NumGoroutine() <= baseGoroutines+2
	})
	publishEventually(t, bus, msg(1))
	r.next(t, 1)
}

// TestRedisBusPublishBoundedWhenRedisHangs: a server that takes PUBLISH
// and answers nothing must not hold the publisher past PublishTimeout,
// whatever timeouts the client was built with.
func TestRedisBusPublishBoundedWhenRedisHangs(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts redis.UniversalOptions
	}{
		{"no read timeout", redis.UniversalOptions{ReadTimeout: -1}},
		{"context timeouts", redis.UniversalOptions{ContextTimeoutEnabled: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := redistest.Start(t)
			opts := tc.opts
			opts.Addrs = []string{srv.Addr()}
			rdb := redis.NewUniversalClient(&opts)
			t.Cleanup(func() { _ = rdb.Close() })
			bus := NewRedisBus(rdb, RedisConfig{PublishTimeout: 200 * time.Millisecond}, zaptest.NewLogger(t))
			if err := bus.Publish(context.Background(), msg(0)); err != nil {
				t.Fatal(err)
			}
			mustDo(t, srv, "CLIENT PAUSE 60000 ALL", "+OK")
			t.Cleanup(func() { _, _ = srv.Do("CLIENT UNPAUSE") })
			done := make(chan error, 1)
			go func() { done <- bus.Publish(context.Background(), msg(1)) }()
			select {
			case err := <-done:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("Publish to a paused server = %v, want a deadline error", err)
				}
			case <-time.After(waitFor):
				t.Fatal("Publish to a paused server did not return")
			}
		})
	}
}

// The publish runs on the caller's goroutine only for a client that bounds
// its socket I/O by the context's deadline (the "context timeouts" case
// above); every other client gets the goroutine and the wait on ctx (the
// "no read timeout" case). Constructing a client dials nothing.
func TestBoundsByContext(t *testing.T) {
	for _, tc := range []struct {
		name string
		rdb  redis.UniversalClient
		want bool
	}{
		{"client", redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true}), true},
		{"client without", redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), false},
		{"cluster", redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}, ContextTimeoutEnabled: true}), true},
		{"cluster without", redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}}), false},
		{"sentinel", redis.NewUniversalClient(&redis.UniversalOptions{MasterName: "m", Addrs: []string{"127.0.0.1:1"}, ContextTimeoutEnabled: true}), true},
		{"ring", redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}}), false},
	} {
		t.Cleanup(func() { _ = tc.rdb.Close() })
		if got := boundsByContext(tc.rdb); got != tc.want {
			t.Errorf("%s: boundsByContext = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestRedisBusSecondConfirmationIsAGap: a second subscribe confirmation on
// one connection means go-redis subscribed again by itself (after
// re-dialling behind the bus's back), so events may have been lost in
// between: that is a gap, followed by a new subscription.
func TestRedisBusSecondConfirmationIsAGap(t *testing.T) {
	srv := redistest.Start(t)
	bus := newRedisBusT(t, srv, RedisConfig{})
	r := startRecorded(t, bus)
	ps := bus.sub.Load().current()
	if ps == nil {
		t.Fatal("no current connection after the first subscription")
	}
	if err := ps.Subscribe(context.Background(), "test:events"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "gap then subscribed", func() bool {
		return slices.Equal(r.calls(), []string{"subscribed",
			"gap:subscription lost: " + errRedialled.Error(), "subscribed"})
	})
	if err := bus.Publish(context.Background(), msg(1)); err != nil {
		t.Fatal(err)
	}
	r.next(t, 1)
}
