package sessioncache

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/internal/fakeclock"
	"github.com/sessiongate/sessiongate/session"
)

// store is a Loader over a map, counting reads; block, when set, holds a
// read until it is closed (entered is signalled first).
type store struct {
	mu      sync.Mutex
	m       map[string]session.Session
	err     error
	reads   atomic.Int64
	block   chan struct{}
	entered chan struct{}
}

func (s *store) Load(_ context.Context, h string) (session.Session, bool, error) {
	s.reads.Add(1)
	s.mu.Lock()
	block, entered := s.block, s.entered
	s.block = nil
	sess, ok := s.m[h]
	err := s.err
	s.mu.Unlock()
	if block != nil {
		close(entered)
		<-block
	}
	return sess, ok, err
}

func (s *store) del(h string) {
	s.mu.Lock()
	delete(s.m, h)
	s.mu.Unlock()
}

type fixture struct {
	c     *Cache
	st    *store
	clock *fakeclock.Clock
	live  atomic.Bool
}

func newFixture(t *testing.T, ttl time.Duration) *fixture {
	t.Helper()
	f := &fixture{clock: fakeclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))}
	exp := f.clock.Now().Add(time.Hour)
	f.st = &store{m: map[string]session.Session{
		"h1": {Handle: "h1", UserID: "alice", ExpiresAt: exp, Data: json.RawMessage(`{"big":"data"}`)},
		"h2": {Handle: "h2", UserID: "bob", ExpiresAt: exp},
	}}
	f.live.Store(true)
	f.c = New(Config{TTL: ttl, Now: f.clock.Now}, f.st, f.live.Load)
	return f
}

func (f *fixture) lookup(t *testing.T, h string) bool {
	t.Helper()
	s, ok, err := f.c.Lookup(context.Background(), h)
	if err != nil {
		t.Fatalf("Lookup(%s): %v", h, err)
	}
	if ok && (s.Handle != h || s.Data != nil) {
		t.Fatalf("Lookup(%s) = %+v: wrong session or Data not left out", h, s)
	}
	return ok
}

func TestServesRepeatsFromMemory(t *testing.T) {
	f := newFixture(t, 10*time.Second)
	for range 5 {
		if !f.lookup(t, "h1") {
			t.Fatal("h1 not found")
		}
	}
	if n := f.st.reads.Load(); n != 1 {
		t.Fatalf("store reads = %d, want 1", n)
	}
	if f.c.Hits() != 4 || f.c.Misses() != 1 {
		t.Fatalf("hits %d misses %d, want 4 and 1", f.c.Hits(), f.c.Misses())
	}
}

// The core promise: a revocation event's Invalidate makes the next
// handshake ask the store, which no longer has the session.
func TestInvalidatedSessionIsNotServed(t *testing.T) {
	f := newFixture(t, 10*time.Second)
	f.lookup(t, "h1")
	f.lookup(t, "h2")
	f.st.del("h1")
	f.c.Invalidate("h1")
	if f.lookup(t, "h1") {
		t.Fatal("h1 served after its invalidation")
	}
	if !f.lookup(t, "h2") || f.st.reads.Load() != 3 {
		t.Fatalf("h2 should still be cached (store reads %d, want 3)", f.st.reads.Load())
	}
}

// While the bus is not proven live nothing is served, and what was cached
// before is gone when it comes back (events may have been lost meanwhile).
func TestNotLiveServesNothingAndForgets(t *testing.T) {
	f := newFixture(t, 10*time.Second)
	f.lookup(t, "h1")
	f.live.Store(false)
	f.st.del("h1") // revoked while the bus was down: its event is lost
	if f.lookup(t, "h1") {
		t.Fatal("h1 served while the bus was not live")
	}
	f.live.Store(true)
	if f.lookup(t, "h1") {
		t.Fatal("h1 served from before the outage")
	}
	if f.c.Len() != 0 {
		t.Fatalf("cache holds %d entries after the outage", f.c.Len())
	}
}

func TestClearForgetsEverything(t *testing.T) {
	f := newFixture(t, 10*time.Second)
	f.lookup(t, "h1")
	f.lookup(t, "h2")
	f.c.Clear()
	f.st.del("h1")
	f.st.del("h2")
	if f.lookup(t, "h1") || f.lookup(t, "h2") {
		t.Fatal("served after Clear")
	}
}

// A store read that started before a revocation and finishes after its
// invalidation must not put the revoked session back.
func TestFillRacingAnInvalidationIsDropped(t *testing.T) {
	f := newFixture(t, 10*time.Second)
	f.st.block, f.st.entered = make(chan struct{}), make(chan struct{})
	block := f.st.block
	done := make(chan bool, 1)
	go func() {
		_, ok, _ := f.c.Lookup(context.Background(), "h1")
		done <- ok
	}()
	<-f.st.entered // the read saw h1 still there
	f.st.del("h1")
	f.c.Invalidate("h1")
	close(block)
	if !<-done {
		t.Fatal("the racing read itself should report what the store said")
	}
	if f.lookup(t, "h1") {
		t.Fatal("the racing read's stale session was cached and served")
	}
}

// The bus stops being live and the caller clears the cache just after a
// lookup was told it is live: the lookup's store read may come after a
// revocation whose event the bus lost, so its fill must be dropped. (A
// lookup that read its generation after asking live would keep it.)
func TestFillRacingTheBusGoingDownIsDropped(t *testing.T) {
	f := newFixture(t, 10*time.Second)
	var goingDown atomic.Bool
	f.c.live = func() bool {
		up := f.live.Load()
		if goingDown.CompareAndSwap(true, false) {
			// Answered live; the gap's handler runs before the read.
			f.live.Store(false)
			f.c.Clear()
		}
		return up
	}
	goingDown.Store(true)
	if !f.lookup(t, "h1") {
		t.Fatal("the lookup itself should report what the store said")
	}
	f.live.Store(true) // back, and the session revoked meanwhile
	f.st.del("h1")
	if f.lookup(t, "h1") {
		t.Fatal("a session read while the bus went down was cached and served after it came back")
	}
}

func TestEntriesExpire(t *testing.T) {
	f := newFixture(t, 10*time.Second)
	f.lookup(t, "h1")
	f.clock.Add(10 * time.Second)
	f.lookup(t, "h1")
	if n := f.st.reads.Load(); n != 2 {
		t.Fatalf("store reads = %d, want 2 (the entry outlived its TTL)", n)
	}
	// Absolute expiry wins over a fresh entry.
	f2 := newFixture(t, 2*time.Hour)
	f2.lookup(t, "h1")
	f2.clock.Add(time.Hour)
	f2.st.del("h1")
	if f2.lookup(t, "h1") {
		t.Fatal("an expired session was served from the cache")
	}
}

// TestHitAndMissReturnTheSame: a hit returns exactly what the miss that
// filled it returned: the handle, the user and the absolute expiry, and
// nothing else (the entry keeps no more).
func TestHitAndMissReturnTheSame(t *testing.T) {
	f := newFixture(t, 10*time.Second)
	f.st.mu.Lock()
	full := f.st.m["h1"]
	full.CreatedAt, full.AuthAt = f.clock.Now().Add(-time.Minute), f.clock.Now()
	f.st.m["h1"] = full
	f.st.mu.Unlock()
	miss, ok, err := f.c.Lookup(context.Background(), "h1")
	if !ok || err != nil {
		t.Fatalf("miss: %v %v", ok, err)
	}
	hit, ok, err := f.c.Lookup(context.Background(), "h1")
	if !ok || err != nil || f.c.Hits() != 1 {
		t.Fatalf("hit: %v %v, hits %d", ok, err, f.c.Hits())
	}
	want := session.Session{Handle: "h1", UserID: "alice", ExpiresAt: full.ExpiresAt}
	if !reflect.DeepEqual(miss, want) || !reflect.DeepEqual(hit, want) {
		t.Fatalf("miss %+v, hit %+v; want both %+v", miss, hit, want)
	}
}

// TestSweepDropsStaleEntries: entries past their TTL are not only never
// served, they are dropped by the sweep (an idle instance keeps no memory
// for handshakes long past); fresh ones stay and are still served.
func TestSweepDropsStaleEntries(t *testing.T) {
	f := newFixture(t, 10*time.Second)
	f.lookup(t, "h1")
	f.clock.Add(6 * time.Second)
	f.lookup(t, "h2")
	if n := f.c.Sweep(); n != 0 || f.c.Len() != 2 {
		t.Fatalf("sweep of fresh entries dropped %d, left %d; want 0 and 2", n, f.c.Len())
	}
	f.clock.Add(4 * time.Second) // h1 is 10 s old, h2 4 s
	if n := f.c.Sweep(); n != 1 || f.c.Len() != 1 {
		t.Fatalf("sweep dropped %d, left %d; want 1 (h1 past its TTL) and 1", n, f.c.Len())
	}
	reads := f.st.reads.Load()
	if !f.lookup(t, "h2") || f.st.reads.Load() != reads {
		t.Fatal("the fresh entry did not survive the sweep")
	}
	f.clock.Add(6 * time.Second)
	if n := f.c.Sweep(); n != 1 || f.c.Len() != 0 {
		t.Fatalf("sweep dropped %d, left %d; want 1 and 0", n, f.c.Len())
	}
}

// TestRunSweeps: Run sweeps on its own, every TTL, until its context ends
// (real clock: the entry's TTL and the ticker are both 20 ms).
func TestRunSweeps(t *testing.T) {
	st := &store{m: map[string]session.Session{"h1": {Handle: "h1", UserID: "alice", ExpiresAt: time.Now().Add(time.Hour)}}}
	c := New(Config{TTL: 20 * time.Millisecond}, st, func() bool { return true })
	if _, ok, err := c.Lookup(context.Background(), "h1"); !ok || err != nil || c.Len() != 1 {
		t.Fatalf("Lookup: %v %v, %d entries", ok, err, c.Len())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	deadline := time.Now().Add(time.Minute) // a hang guard, not a speed bound
	for c.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("Run never swept the stale entry")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestMissesAndErrorsAreNotCached(t *testing.T) {
	f := newFixture(t, 10*time.Second)
	f.lookup(t, "nope")
	f.lookup(t, "nope")
	if f.st.reads.Load() != 2 {
		t.Fatal("a miss was cached")
	}
	f.st.err = errors.New("redis down")
	if _, _, err := f.c.Lookup(context.Background(), "h1"); err == nil {
		t.Fatal("error swallowed")
	}
	f.st.err = nil
	f.lookup(t, "h1")
	if f.st.reads.Load() != 4 || f.c.Len() != 1 {
		t.Fatalf("reads %d len %d: an error was cached", f.st.reads.Load(), f.c.Len())
	}
}

func TestBoundedAndOff(t *testing.T) {
	f := newFixture(t, 10*time.Second)
	f.c.cfg.MaxEntries = 1
	f.lookup(t, "h1")
	f.lookup(t, "h2")
	if f.c.Len() != 1 {
		t.Fatalf("len %d, want 1", f.c.Len())
	}
	off := newFixture(t, 0)
	off.lookup(t, "h1")
	off.lookup(t, "h1")
	if off.st.reads.Load() != 2 || off.c.Len() != 0 {
		t.Fatal("TTL 0 must turn the cache off")
	}
}
