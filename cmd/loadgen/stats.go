package main

import (
	"runtime"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"time"
)

// recorder collects up to cap(vals) latency samples (nanoseconds) from any
// number of goroutines without a lock; later samples are counted, not kept.
type recorder struct {
	n    atomic.Int64
	vals []int64
}

func newRecorder(capacity int) *recorder {
	return &recorder{vals: make([]int64, capacity)}
}

func (r *recorder) add(d int64) {
	i := r.n.Add(1) - 1
	if i < int64(len(r.vals)) {
		r.vals[i] = d
	}
}

// sorted returns the kept samples, sorted. Call it once the writers are done.
func (r *recorder) sorted() []int64 {
	n := min(r.n.Load(), int64(len(r.vals)))
	out := slices.Clone(r.vals[:n])
	slices.Sort(out)
	return out
}

// latency is a latency distribution summary, in milliseconds.
type latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

// summarize computes nearest-rank percentiles of sorted nanosecond samples.
func summarize(sorted []int64) latency {
	if len(sorted) == 0 {
		return latency{}
	}
	ms := func(ns int64) float64 { return float64(ns) / float64(time.Millisecond) }
	return latency{
		N:   len(sorted),
		P50: ms(percentile(sorted, 50)),
		P90: ms(percentile(sorted, 90)),
		P99: ms(percentile(sorted, 99)),
		Max: ms(sorted[len(sorted)-1]),
	}
}

// percentile is the nearest-rank p-th percentile of sorted (non-empty).
func percentile(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted))+0.999999) - 1
	rank = max(0, min(rank, len(sorted)-1))
	return sorted[rank]
}

// ratio is a/b, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// quietCollector runs the load generator's own collector now and keeps it
// off until restore is called. The generator holds every client
// connection (12000 in the full revocation phase): its collection marks
// for tens of milliseconds on its one core, and one that lands inside a
// latency measurement delays the readings of whichever server happens to
// be measured then (it landed in the gateway's revocations and not in the
// path floor's in the first run that looked). Every loop timed under it is
// bounded, so what it allocates meanwhile is too.
func quietCollector() (restore func()) {
	runtime.GC()
	old := debug.SetGCPercent(-1)
	return func() { debug.SetGCPercent(old) }
}
