package memtune

import (
	"context"
	"math"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestLimit(t *testing.T) {
	tu := New(Config{Headroom: 0.25, MinHeadroom: 10})
	// 1000 live of 1200 objects, 300 free, 100 released, 2000 mapped:
	// other = 2000-100-300-1200 = 400; room = 250.
	if got := tu.Limit(1000, 2000, 100, 300, 1200); got != 400+1000+250 {
		t.Fatalf("Limit = %d, want 1650", got)
	}
	// A small live heap gets the minimum room.
	if got := tu.Limit(8, 100, 0, 10, 20); got != 70+8+10 {
		t.Fatalf("Limit = %d, want 88", got)
	}
	d := New(Config{})
	if d.cfg.Headroom != 0.25 || d.cfg.MinHeadroom != 16<<20 || d.cfg.Interval != 500*time.Millisecond {
		t.Fatalf("defaults %+v", d.cfg)
	}
}

// Tune sets a limit above what the runtime uses now (the live heap and its
// other memory), and Run restores "no limit" when it stops.
func TestTuneAndRun(t *testing.T) {
	var mu sync.Mutex
	var set []int64
	tu := New(Config{Interval: time.Millisecond})
	tu.set = func(v int64) int64 {
		mu.Lock()
		defer mu.Unlock()
		set = append(set, v)
		return 0
	}
	limit := tu.Tune()
	if limit < 16<<20 {
		t.Fatalf("limit %d below the minimum headroom", limit)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); tu.Run(ctx) }()
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if len(set) < 1 || set[0] != limit || set[len(set)-1] != math.MaxInt64 {
		t.Fatalf("limits set %v: want %d first and no limit last", set, limit)
	}
}

// A check that finds more allocated than the room since the last one lifts
// the limit while the burst lasts; the first quiet check returns the
// burst's garbage (one FreeOSMemory) and sets the limit again, from the
// figures read after it.
func TestBurstLiftsTheLimit(t *testing.T) {
	var set []int64
	frees := 0
	tu := New(Config{Headroom: 0.25, MinHeadroom: 100})
	tu.set = func(v int64) int64 { set = append(set, v); return 0 }
	tu.free = func() { frees++ }
	// live 1000 (room 250), nothing else mapped: limit 1250.
	fig := figures{live: 1000, total: 1000, objects: 1000}
	read := func() figures { return fig }
	check := func(allocated uint64, want int64, wantFrees int) {
		t.Helper()
		fig.allocs += allocated
		if got := tu.tune(read); got != want || frees != wantFrees {
			t.Fatalf("after %d allocated: limit %d, %d frees; want %d, %d (set %v)", allocated, got, frees, want, wantFrees, set)
		}
	}
	check(1_000_000, 1250, 0) // the first check has no window to judge
	check(250, 1250, 0)       // the room's worth: no burst
	check(251, math.MaxInt64, 0)
	check(5000, math.MaxInt64, 0) // still a burst: nothing set again
	// Quiet: the garbage goes back, and the limit follows the live heap
	// the burst left (now 2000: room 500).
	fig.live, fig.total, fig.objects = 2000, 2000, 2000
	check(10, 2500, 1)
	check(10, 2500, 1)
	if want := []int64{1250, math.MaxInt64, 2500}; len(set) != len(want) || set[0] != want[0] || set[1] != want[1] || set[2] != want[2] {
		t.Fatalf("limits set %v, want %v", set, want)
	}
}

// A lower live heap lowers the limit only as far as the room above what
// the heap holds now: a limit set below that would start a collection at
// once, with no runway. After the next collection the limit follows the
// live heap down.
func TestLimitComesDownWithRunway(t *testing.T) {
	var set []int64
	tu := New(Config{Headroom: 0.25, MinHeadroom: 100})
	tu.set = func(v int64) int64 { set = append(set, v); return 0 }
	// live 1000 (room 250), nothing else mapped: limit 1250.
	fig := figures{live: 1000, total: 1100, free: 100, objects: 1000}
	read := func() figures { return fig }
	check := func(want int64) {
		t.Helper()
		fig.allocs += 10 // quiet: no burst
		if got := tu.tune(read); got != want {
			t.Fatalf("figures %+v: limit %d, want %d (set %v)", fig, got, want, set)
		}
	}
	check(1250)
	// A collection found 600 live (room 150: 750 would do), but the heap
	// already holds 1150 again: the limit stays.
	fig = figures{live: 600, total: 1200, free: 50, objects: 1150}
	check(1250)
	// The heap holds 700 (the collection's garbage swept, pages kept
	// free): the limit comes down to 700 + 150.
	fig = figures{live: 600, total: 1200, free: 500, objects: 700}
	check(850)
	// Down to what the live heap needs once the heap holds no more than it.
	fig = figures{live: 600, total: 1200, released: 300, free: 300, objects: 600}
	check(750)
	// A growing live heap raises it at once.
	fig = figures{live: 2000, total: 2100, free: 100, objects: 2000}
	check(2500)
	if want := []int64{1250, 850, 750, 2500}; !slices.Equal(set, want) {
		t.Fatalf("limits set %v, want %v", set, want)
	}
}
