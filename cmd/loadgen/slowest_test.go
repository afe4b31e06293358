package main

import (
	"testing"
	"time"
)

// The slowest 1% of 1000 samples are 10; seven of them inside one 200 ms
// window (a collection) and three spread out are reported as such.
func TestSlowestOf(t *testing.T) {
	const ms = int64(time.Millisecond)
	starts := make([]int64, 1000)
	lats := make([]int64, 1000)
	for i := range starts {
		starts[i] = 5_000*ms + int64(i)*ms // 1 ms apart, from an arbitrary clock
		lats[i] = ms / 2
	}
	for i, at := range []int{400, 430, 470, 500, 520, 560, 590} {
		lats[at] = int64(3+i) * ms
	}
	lats[10], lats[700], lats[999] = 2*ms, 4*ms, 20*ms
	lats[300] = 2*ms - 1 // the 11th slowest: not in
	got := slowestOf(starts, lats, 200*time.Millisecond)
	want := slowest{N: 10, MinMs: 2, FirstAtMs: 10, LastAtMs: 999, InWindow: 7, WindowMs: 200}
	if got != want {
		t.Fatalf("slowestOf = %+v, want %+v", got, want)
	}
	if s := got.String(); s != "10, >= 2.00; 7 in 200 ms; 0.01-1.00" {
		t.Fatalf("String = %q", s)
	}
	// A window that cannot hold two of them.
	if got := slowestOf(starts, lats, 20*time.Millisecond); got.InWindow != 1 {
		t.Fatalf("20 ms window: %d in it, want 1", got.InWindow)
	}
	if got := slowestOf(nil, nil, time.Second); got != (slowest{}) {
		t.Fatalf("no samples: %+v", got)
	}
	// Fewer than 100 samples: the slowest one.
	if got := slowestOf(starts[:5], lats[:5], time.Second); got.N != 1 || got.MinMs != 0.5 {
		t.Fatalf("5 samples: %+v", got)
	}
}
