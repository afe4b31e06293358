package revocation

import (
	"strconv"
	"sync"
	"testing"
	"time"
)

func TestTombstoneLivesExactlyItsTTL(t *testing.T) {
	now := time.Unix(1000, 0)
	ts := newTombstones(time.Minute, 10)
	ts.add("a", now)
	if !ts.has("a", now.Add(time.Minute-time.Nanosecond)) || ts.has("a", now.Add(time.Minute)) {
		t.Fatal("a tombstone must live exactly its ttl")
	}
	// Re-adding extends it from the new time.
	ts.add("a", now.Add(30*time.Second))
	if !ts.has("a", now.Add(89*time.Second)) || ts.has("a", now.Add(90*time.Second)) {
		t.Fatal("re-adding must restart the ttl")
	}
	// Expired entries go when others are added.
	ts.add("b", now.Add(2*time.Minute))
	if n := ts.size(); n != 1 {
		t.Fatalf("%d tombstones after the first expired, want 1", n)
	}
}

// Issue 9 item 5: overflow evicts the oldest tombstones, one by one, never
// the set (the old code cleared it and kept only the newest).
func TestTombstonesEvictOldestFirst(t *testing.T) {
	now := time.Unix(1000, 0)
	ts := newTombstones(time.Minute, 3)
	for i, h := range []string{"a", "b", "c", "d"} {
		ts.add(h, now.Add(time.Duration(i)*time.Second))
	}
	at := now.Add(5 * time.Second)
	if ts.has("a", at) {
		t.Fatal("the oldest tombstone survived overflow")
	}
	for _, h := range []string{"b", "c", "d"} {
		if !ts.has(h, at) {
			t.Fatalf("tombstone %s lost on overflow; only the oldest should go", h)
		}
	}
	// Re-adding b makes it the newest: c is now the oldest.
	ts.add("b", at)
	ts.add("e", at)
	if ts.has("c", at) || !ts.has("b", at) || !ts.has("d", at) || !ts.has("e", at) {
		t.Fatal("after re-adding b and adding e, c (the oldest) should be the one evicted")
	}
	if n := ts.size(); n != 3 {
		t.Fatalf("%d tombstones, bound is 3", n)
	}
}

// The default bound, overflowed by 10: exactly the 10 oldest go.
func TestTombstonesOverflowAtDefaultBound(t *testing.T) {
	cfg, err := Config{InstanceID: "x"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1000, 0)
	ts := newTombstones(cfg.TombstoneTTL, cfg.MaxTombstones)
	total := cfg.MaxTombstones + 10
	for i := 0; i < total; i++ {
		ts.add(strconv.Itoa(i), now)
	}
	for _, i := range []int{0, 9} {
		if ts.has(strconv.Itoa(i), now) {
			t.Errorf("tombstone %d (among the 10 oldest) survived", i)
		}
	}
	for _, i := range []int{10, cfg.MaxTombstones / 2, total - 1} {
		if !ts.has(strconv.Itoa(i), now) {
			t.Errorf("tombstone %d of %d lost on overflow; only the 10 oldest should go", i, total)
		}
	}
	if n := ts.size(); n != cfg.MaxTombstones {
		t.Fatalf("%d tombstones, bound is %d", n, cfg.MaxTombstones)
	}
}

// A held tombstone (a revocation the store has not confirmed) neither
// expires nor is evicted; its ttl starts when the last hold is released.
func TestHeldTombstoneOutlivesTTLAndOverflow(t *testing.T) {
	now := time.Unix(1000, 0)
	ts := newTombstones(time.Minute, 2)
	ts.add("h", now)
	ts.hold("h")
	ts.hold("h")
	later := now.Add(time.Hour)
	for i := 0; i < 10; i++ {
		ts.add(strconv.Itoa(i), later)
	}
	ts.add("h", later) // an event for a held handle changes nothing
	if !ts.has("h", later) {
		t.Fatal("a held tombstone expired or was evicted")
	}
	ts.release("h", later)
	if !ts.has("h", later.Add(2*time.Hour)) {
		t.Fatal("released one of two holds, and the tombstone is no longer held")
	}
	ts.release("h", later)
	if !ts.has("h", later.Add(time.Minute-time.Nanosecond)) || ts.has("h", later.Add(time.Minute)) {
		t.Fatal("after the last release the tombstone must live one ttl from the release")
	}
	if n := ts.size(); n > 2 {
		t.Fatalf("%d tombstones, bound is 2", n)
	}
}

// Re-adding one handle many times keeps memory bounded by the live set.
func TestTombstonesReAddStaysSmall(t *testing.T) {
	now := time.Unix(1000, 0)
	ts := newTombstones(time.Hour, 100)
	for i := 0; i < 100_000; i++ {
		ts.add("same", now)
		ts.add(strconv.Itoa(i%10), now)
	}
	ts.mu.RLock()
	queued := len(ts.fifo) - ts.head
	ts.mu.RUnlock()
	if queued > 2*11+64 {
		t.Fatalf("%d queued entries for 11 live tombstones", queued)
	}
}

// Handshakes read while revocations write (run under -race).
func TestTombstonesConcurrent(t *testing.T) {
	now := time.Unix(1000, 0)
	ts := newTombstones(time.Minute, 50)
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				h := strconv.Itoa(i % 97)
				ts.add(h, now)
				if i%7 == 0 {
					ts.hold(h)
					ts.release(h, now)
				}
			}
		}()
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				ts.has(strconv.Itoa(i%97), now)
			}
		}()
	}
	wg.Wait()
	if n := ts.size(); n > 50 {
		t.Fatalf("%d tombstones, bound is 50", n)
	}
}
