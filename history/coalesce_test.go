package history

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gatedReader is a Reader whose reads block until release is closed, and
// that counts them.
type gatedReader struct {
	calls   atomic.Int32
	started chan struct{} // one send per read
	release chan struct{}
	err     error
}

func (g *gatedReader) Since(ctx context.Context, stream string, pos Position, limit int) (Result, error) {
	g.calls.Add(1)
	g.started <- struct{}{}
	select {
	case <-g.release:
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	if g.err != nil {
		return Result{}, g.err
	}
	return Result{Recovered: true, Current: Position{"ab", pos.Offset + 1},
		Events: []Event{{Offset: pos.Offset + 1, Data: []byte(stream)}}}, nil
}

// waiters returns a hook for Coalescing.joined that signals on the
// returned channel each time a caller joins a flight.
func waiters(c *Coalescing) <-chan int {
	ch := make(chan int, 1000)
	c.joined = func(_ sinceKey, n int) { ch <- n }
	return ch
}

func TestCoalescingSharesIdenticalReads(t *testing.T) {
	g := &gatedReader{started: make(chan struct{}, 100), release: make(chan struct{})}
	c := NewCoalescing(g)
	joined := waiters(c)
	const n = 50
	pos := Position{"ab", 3}
	results := make([]Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i], errs[i] = c.Since(context.Background(), "user:alice", pos, 10) })
	}
	// A different position, stream or limit is a read of its own.
	others := []sinceKey{{"user:alice", Position{"ab", 4}, 10}, {"user:bob", pos, 10}, {"user:alice", pos, 11}}
	for _, k := range others {
		wg.Go(func() { _, _ = c.Since(context.Background(), k.stream, k.pos, k.limit) })
	}
	for range n + len(others) {
		<-joined
	}
	close(g.release)
	wg.Wait()
	if got := g.calls.Load(); got != 1+int32(len(others)) {
		t.Fatalf("%d reads reached the reader, want %d", got, 1+len(others))
	}
	for i := range n {
		if errs[i] != nil || !results[i].Recovered || results[i].Events[0].Offset != 4 {
			t.Fatalf("caller %d: %+v, %v", i, results[i], errs[i])
		}
	}
	// Once done, the same read runs again: nothing is cached.
	g.release = make(chan struct{})
	close(g.release)
	if _, err := c.Since(context.Background(), "user:alice", pos, 10); err != nil || g.calls.Load() != 2+int32(len(others)) {
		t.Fatalf("a later read was not run: %v, %d calls", err, g.calls.Load())
	}
}

func TestCoalescingSharesErrors(t *testing.T) {
	boom := errors.New("boom")
	g := &gatedReader{started: make(chan struct{}, 100), release: make(chan struct{}), err: boom}
	c := NewCoalescing(g)
	joined := waiters(c)
	errs := make(chan error, 3)
	for range 3 {
		go func() { _, err := c.Since(context.Background(), "all", Position{}, 1); errs <- err }()
	}
	for range 3 {
		<-joined
	}
	close(g.release)
	for range 3 {
		if err := <-errs; !errors.Is(err, boom) {
			t.Fatalf("got %v, want boom", err)
		}
	}
	if g.calls.Load() != 1 {
		t.Fatalf("%d reads, want 1", g.calls.Load())
	}
}

// TestCoalescingCancelledReaderDoesNotFailOthers: when the caller running
// the read gives up, a waiter still gets a result (it reads again), and a
// waiter that gives up returns at once.
func TestCoalescingCancelledReaderDoesNotFailOthers(t *testing.T) {
	g := &gatedReader{started: make(chan struct{}, 100), release: make(chan struct{})}
	c := NewCoalescing(g)
	joined := waiters(c)
	leaderCtx, cancelLeader := context.WithCancel(context.Background())
	leaderErr := make(chan error, 1)
	go func() { _, err := c.Since(leaderCtx, "all", Position{}, 1); leaderErr <- err }()
	<-joined
	<-g.started

	quitterCtx, quit := context.WithCancel(context.Background())
	quitterErr := make(chan error, 1)
	go func() { _, err := c.Since(quitterCtx, "all", Position{}, 1); quitterErr <- err }()
	type out struct {
		r   Result
		err error
	}
	waiter := make(chan out, 1)
	go func() { r, err := c.Since(context.Background(), "all", Position{}, 1); waiter <- out{r, err} }()
	<-joined
	<-joined

	quit()
	if err := <-quitterErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("quitter: %v", err)
	}
	cancelLeader()
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("leader: %v", err)
	}
	select {
	case <-g.started: // the waiter reads again
	case <-time.After(waitFor):
		t.Fatal("the waiter did not read again")
	}
	close(g.release)
	if o := <-waiter; o.err != nil || !o.r.Recovered {
		t.Fatalf("waiter: %+v, %v", o.r, o.err)
	}
}

// heldReader holds each read until release is closed, then reads r.
type heldReader struct {
	r       Reader
	release chan struct{}
}

func (h heldReader) Since(ctx context.Context, stream string, pos Position, limit int) (Result, error) {
	<-h.release
	return h.r.Since(ctx, stream, pos, limit)
}

// TestCoalescingOnRedis: identical concurrent reads of a real history
// reach redis-server as one MULTI (one XRANGE), counted by the server.
func TestCoalescingOnRedis(t *testing.T) {
	rdb := newClient(t, startRedis(t).Addr())
	h := NewRedis(rdb, Config{})
	ctx := context.Background()
	ps := appendN(t, h, "all", 1, 3)
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	held := heldReader{r: h, release: make(chan struct{})}
	c := NewCoalescing(held)
	joined := waiters(c)
	const n = 20
	errs := make(chan error, n)
	for range n {
		go func() {
			r, err := c.Since(ctx, "all", ps[0], 10)
			if err == nil && (!r.Recovered || len(r.Events) != 2) {
				err = errors.New("wrong result")
			}
			errs <- err
		}()
	}
	for range n {
		<-joined
	}
	close(held.release)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	stats := rdb.Info(ctx, "commandstats").Val()
	if !containsLine(stats, "cmdstat_xrange:calls=1,") {
		t.Fatalf("want exactly one XRANGE; commandstats:\n%s", stats)
	}
}

func containsLine(s, prefix string) bool {
	for line := range strings.Lines(s) {
		if strings.HasPrefix(line, prefix) {
			return true
		}
	}
	return false
}
