package pubsub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// waitFor is the generous bound of every "eventually" in these tests.
const waitFor = 15 * time.Second

// eventually fails the test unless cond becomes true within waitFor.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// msg returns a valid message event carrying n.
func msg(n int) Event {
	return Event{Kind: KindMessage, ID: NewEventID(), Origin: "test", Target: &Target{All: true},
		Name: "n", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}
}

// seq returns the n a message event built by msg carries, or -1.
func seq(e Event) int {
	var d struct{ N int }
	if e.Kind != KindMessage || json.Unmarshal(e.Data, &d) != nil {
		return -1
	}
	return d.N
}

// recorder collects what a bus reports through its callbacks, in order.
type recorder struct {
	mu     sync.Mutex
	log    []string // "gap:<reason>" and "subscribed", in call order
	events chan Event
}

func newRecorder() *recorder { return &recorder{events: make(chan Event, 10000)} }

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.log = append(r.log, s)
	r.mu.Unlock()
}

func (r *recorder) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.log...)
}

func (r *recorder) count(prefix string) int {
	n := 0
	for _, c := range r.calls() {
		if len(c) >= len(prefix) && c[:len(prefix)] == prefix {
			n++
		}
	}
	return n
}

func (r *recorder) handle(_ context.Context, e Event) { r.events <- e }

// next returns the next event with the given message number, skipping
// others, or fails.
func (r *recorder) next(t *testing.T, n int) Event {
	t.Helper()
	timeout := time.After(waitFor)
	for {
		select {
		case e := <-r.events:
			if seq(e) == n {
				return e
			}
		case <-timeout:
			t.Fatalf("event %d not received", n)
		}
	}
}

// callbackBus is what both buses offer beyond Bus.
type callbackBus interface {
	Bus
	OnSubscribed(func())
	OnGap(func(string))
}

// runBus runs bus with h until the test ends, and checks that Run returns.
func runBus(t *testing.T, bus Bus, h Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- bus.Run(ctx, h) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v", err)
				}
			case <-time.After(waitFor):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// startRecorded wires a recorder to bus, runs it and waits for the first
// subscription.
func startRecorded(t *testing.T, bus callbackBus) *recorder {
	t.Helper()
	r := newRecorder()
	bus.OnSubscribed(func() { r.add("subscribed") })
	bus.OnGap(func(reason string) { r.add("gap:" + reason) })
	runBus(t, bus, r.handle)
	eventually(t, "first subscription", func() bool { return r.count("subscribed") >= 1 })
	return r
}

// newClient returns a UniversalClient for addrs, closed when the test ends.
func newClient(t testing.TB, addrs ...string) redis.UniversalClient {
	t.Helper()
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: addrs,
		DialTimeout: time.Second, MaxRetries: 1})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// newRedisBusT returns a RedisBus on a fresh client to srv.
func newRedisBusT(t *testing.T, srv *redistest.Server, cfg RedisConfig) *RedisBus {
	t.Helper()
	if cfg.Channel == "" {
		cfg.Channel = "test:events"
	}
	return NewRedisBus(newClient(t, srv.Addr()), cfg, zaptest.NewLogger(t))
}

// publishEventually retries Publish until it succeeds (the server may be
// coming back).
func publishEventually(t *testing.T, bus Bus, e Event) {
	t.Helper()
	var err error
	eventually(t, "publish to succeed", func() bool {
		err = bus.Publish(context.Background(), e)
		return err == nil
	})
}

var errCut = errors.New("test: bus cut")
