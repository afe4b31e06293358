package inbound

import (
	"context"
	"sync"
	"testing"
	"time"
)

// countingConsumer counts Extend calls per message id.
type countingConsumer struct {
	Consumer
	mu      sync.Mutex
	extends map[string]int
}

func (c *countingConsumer) Extend(ctx context.Context, consumer string, m *Message) error {
	c.mu.Lock()
	c.extends[m.ID]++
	c.mu.Unlock()
	return c.Consumer.Extend(ctx, consumer, m)
}

func (c *countingConsumer) extended(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.extends[id]
}

// A message a worker has read but not started (it waits behind a slow
// one of its partition) keeps its visibility: after several visibility
// timeouts neither another consumer nor the worker itself claims it, and
// the worker handles it once, as its first delivery.
func TestWorkerKeepsHeldMessages(t *testing.T) {
	h := impls(t)[1].new(t, Config{Partitions: 1, VisibilityTimeout: time.Second})
	q := &countingConsumer{Consumer: h.q, extends: map[string]int{}}
	release := make(chan struct{})
	var rec recorder
	startWorker(t, Worker{Consumer: q, Name: "w1", Concurrency: 1, Handlers: map[string]Handler{"chat": func(_ context.Context, m *Message) error {
		rec.add(m)
		if m.ClientID == "c1" {
			<-release
		}
		return nil
	}}})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the worker's stop, should the test fail
	want := enqueue(t, h.q, msg("alice", 1), msg("alice", 2))
	eventually(t, "w1 to hold both messages", func() bool {
		s := stats(t, h.q)
		return len(rec.all()) == 1 && s.Pending == 2 && s.Lag == 0
	})
	// Six extensions of the held message: two visibility timeouts at least.
	eventually(t, "the held message to be kept past its visibility timeout", func() bool {
		if got := read(t, h.q, "w2", 10); len(got) != 0 {
			t.Fatalf("another consumer claimed %v from a live worker", ids(got))
		}
		return q.extended(want[1]) >= 6
	})
	unblock()
	drained(t, h.q)
	seen := rec.all()
	if len(seen) != 2 || seen[1].ID != want[1] || seen[1].Deliveries != 1 {
		t.Fatalf("handled %+v, want %v once each, the second as its first delivery", seen, want)
	}
}
