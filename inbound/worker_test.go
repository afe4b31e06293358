package inbound

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"
)

// startWorker runs w until the test ends (or the returned stop is
// called) and returns stop, which cancels Run and returns its error.
func startWorker(t *testing.T, w Worker) (stop func() error) {
	t.Helper()
	if w.Log == nil {
		w.Log = zaptest.NewLogger(t)
	}
	if w.BackoffMin == 0 {
		w.BackoffMin, w.BackoffMax = time.Millisecond, 5*time.Millisecond
	}
	if w.Block == 0 {
		w.Block = 20 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-errc })
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// recorder collects what handlers saw.
type recorder struct {
	mu   sync.Mutex
	seen []Message
}

func (r *recorder) add(m *Message) {
	r.mu.Lock()
	r.seen = append(r.seen, *m)
	r.mu.Unlock()
}

func (r *recorder) all() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

// drained waits until the queue holds nothing not done.
func drained(t *testing.T, q Admin) Stats {
	t.Helper()
	var s Stats
	eventually(t, "the queue to drain", func() bool {
		s = stats(t, q)
		return s.Length == 0
	})
	return s
}

// TestWorker runs the worker library on memory and on a real
// redis-server. Visibility timeouts are long: these tests are not about
// them, and a loaded machine must not turn a slow step into a claim.
func TestWorker(t *testing.T) {
	for _, im := range impls(t)[:2] {
		t.Run(im.name, func(t *testing.T) {
			t.Run("handler per event, in order per partition, at most one per partition at once", func(t *testing.T) {
				q := im.new(t, Config{Partitions: 4, VisibilityTimeout: time.Minute}).q
				var rec recorder
				var mu sync.Mutex
				busy := map[int]bool{}
				overlap := make(chan string, 1)
				track := func(m *Message) func() {
					p := Partition(m.UserID, 4)
					mu.Lock()
					defer mu.Unlock()
					if busy[p] {
						select {
						case overlap <- m.ID:
						default:
						}
					}
					busy[p] = true
					return func() { mu.Lock(); busy[p] = false; mu.Unlock() }
				}
				var other recorder
				startWorker(t, Worker{Consumer: q, Name: "w1", Concurrency: 4, Batch: 3,
					Handlers: map[string]Handler{"chat": func(_ context.Context, m *Message) error {
						defer track(m)()
						rec.add(m)
						return nil
					}},
					Default: func(_ context.Context, m *Message) error { other.add(m); return nil },
				})
				users := []string{"alice", "bob", "carol", "dave", "erin", "frank"}
				queued := map[string][]string{}
				for i := range 300 {
					u := users[i%len(users)]
					queued[u] = append(queued[u], enqueue(t, q, msg(u, i))[0])
				}
				odd := msg("alice", 1000)
				odd.Event = "unknown"
				oddID := enqueue(t, q, odd)[0]
				drained(t, q)
				select {
				case id := <-overlap:
					t.Fatalf("message %s ran while another of its partition was running", id)
				default:
				}
				got := map[string][]string{}
				for _, m := range rec.all() {
					if m.Deliveries != 1 {
						t.Fatalf("message %s delivered %d times", m.ID, m.Deliveries)
					}
					got[m.UserID] = append(got[m.UserID], m.ID)
				}
				for _, u := range users {
					if !slices.Equal(got[u], queued[u]) {
						t.Fatalf("%s handled %v, queued %v", u, got[u], queued[u])
					}
				}
				if o := other.all(); len(o) != 1 || o[0].ID != oddID {
					t.Fatalf("default handler saw %v, want [%s]", ids(o), oddID)
				}
			})

			t.Run("a failing handler is retried with a delivery each time", func(t *testing.T) {
				q := im.new(t, Config{MaxDeliveries: 5, VisibilityTimeout: time.Minute}).q
				var rec recorder
				startWorker(t, Worker{Consumer: q, Handlers: map[string]Handler{"chat": func(_ context.Context, m *Message) error {
					rec.add(m)
					if m.Deliveries < 3 {
						return errors.New("not yet")
					}
					return nil
				}}})
				id := enqueue(t, q, msg("alice", 1))[0]
				if s := drained(t, q); s.Dead != 0 {
					t.Fatalf("stats = %+v", s)
				}
				var counts []int
				for _, m := range rec.all() {
					if m.ID != id {
						t.Fatalf("handled %s, want %s", m.ID, id)
					}
					counts = append(counts, m.Deliveries)
				}
				if !slices.Equal(counts, []int{1, 2, 3}) {
					t.Fatalf("deliveries seen %v, want [1 2 3]", counts)
				}
			})

			t.Run("dead letter after MaxDeliveries with the last error", func(t *testing.T) {
				q := im.new(t, Config{MaxDeliveries: 3, VisibilityTimeout: time.Minute}).q
				var rec recorder
				startWorker(t, Worker{Consumer: q, Handlers: map[string]Handler{"chat": func(_ context.Context, m *Message) error {
					rec.add(m)
					return fmt.Errorf("attempt %d failed", m.Deliveries)
				}}})
				in := msg("alice", 1)
				id := enqueue(t, q, in)[0]
				eventually(t, "the dead letter", func() bool { return stats(t, q).Dead == 1 })
				ds := deadLetters(t, q)
				if ds[0].Error != "attempt 3 failed" || ds[0].Deliveries != 3 {
					t.Fatalf("dead letter = %+v", ds[0])
				}
				same(t, ds[0].Message, in, id, 3)
				if n := len(rec.all()); n != 3 {
					t.Fatalf("handler ran %d times, want 3", n)
				}
			})

			t.Run("permanent errors, panics and unknown events", func(t *testing.T) {
				q := im.new(t, Config{MaxDeliveries: 3, VisibilityTimeout: time.Minute}).q
				startWorker(t, Worker{Consumer: q, Handlers: map[string]Handler{
					"bad":   func(context.Context, *Message) error { return Permanent(errors.New("bad input")) },
					"crash": func(context.Context, *Message) error { panic("boom") },
				}})
				bad, crash, unknown := msg("alice", 1), msg("bob", 2), msg("carol", 3)
				bad.Event, crash.Event, unknown.Event = "bad", "crash", "nope"
				enqueue(t, q, bad, crash, unknown)
				eventually(t, "three dead letters", func() bool { return stats(t, q).Dead == 3 })
				byEvent := map[string]DeadLetter{}
				for _, d := range deadLetters(t, q) {
					byEvent[d.Message.Event] = d
				}
				if d := byEvent["bad"]; d.Error != "bad input" || d.Deliveries != 1 {
					t.Errorf("permanent: %+v, want error \"bad input\" after 1 delivery", d)
				}
				if d := byEvent["crash"]; d.Error != "inbound: handler panicked: boom" || d.Deliveries != 3 {
					t.Errorf("panic: %+v", d)
				}
				if d := byEvent["nope"]; !errors.Is(errors.New(d.Error), ErrNoHandler) && d.Error != `inbound: no handler for the event "nope"` {
					t.Errorf("unknown event: %+v", d)
				}
			})

			t.Run("graceful stop finishes running handlers and gives back the rest", func(t *testing.T) {
				q := im.new(t, Config{Partitions: 1, VisibilityTimeout: time.Hour}).q
				core, logs := observer.New(zapcore.InfoLevel)
				started := make(chan struct{})
				release := make(chan struct{})
				var finished atomic.Bool
				stop := startWorker(t, Worker{Consumer: q, Name: "w1", Concurrency: 1, Log: zap.New(core),
					Handlers: map[string]Handler{"chat": func(_ context.Context, m *Message) error {
						if m.ClientID == "c1" {
							close(started)
							<-release
							finished.Store(true)
						}
						return nil
					}}})
				ids := enqueue(t, q, msg("alice", 1), msg("alice", 2))
				<-started
				stopped := make(chan error)
				go func() { stopped <- stop() }()
				eventually(t, "the worker to stop reading", func() bool {
					return logs.FilterMessage("inbound worker stopping").Len() == 1
				})
				close(release)
				if err := <-stopped; err != nil {
					t.Fatalf("Run = %v", err)
				}
				if !finished.Load() {
					t.Fatal("Run returned before the running handler finished")
				}
				got := read(t, q, "w2", 10)
				if len(got) != 1 || got[0].ID != ids[1] || got[0].Deliveries != 1 {
					t.Fatalf("after the stop another worker read %+v, want %s with 1 delivery (the first acked)", got, ids[1])
				}
			})

			t.Run("stop timeout cancels handlers and leaves their message pending", func(t *testing.T) {
				q := im.new(t, Config{VisibilityTimeout: time.Hour}).q
				started := make(chan struct{})
				cancelled := make(chan struct{})
				stop := startWorker(t, Worker{Consumer: q, StopTimeout: 10 * time.Millisecond,
					Handlers: map[string]Handler{"chat": func(ctx context.Context, _ *Message) error {
						close(started)
						<-ctx.Done()
						close(cancelled)
						return ctx.Err()
					}}})
				enqueue(t, q, msg("alice", 1))
				<-started
				if err := stop(); !errors.Is(err, ErrStopTimeout) {
					t.Fatalf("Run = %v, want ErrStopTimeout", err)
				}
				<-cancelled
				if s := stats(t, q); s.Pending != 1 || s.Dead != 0 {
					t.Fatalf("stats = %+v, want the message pending", s)
				}
			})
		})
	}
}
