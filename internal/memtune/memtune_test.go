package memtune

import (
	"context"
	"math"
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
	if d.cfg.Headroom != 0.25 || d.cfg.MinHeadroom != 16<<20 || d.cfg.Interval != time.Second {
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
