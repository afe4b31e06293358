// Package memtune keeps the Go runtime's soft memory limit a fixed
// headroom above the live heap, so that an instance holding many idle
// connections returns the garbage of its handshake bursts to the operating
// system instead of keeping a whole GOGC cycle's worth of it resident.
//
// With the default GOGC=100 the heap may grow to twice the live set before
// a collection, and the scavenger keeps about that much mapped: for a
// gateway whose memory is mostly long-lived connection state, resident
// memory is then about twice what the connections need. A soft limit of
// live × (1 + Headroom) + MinHeadroom (plus the runtime's non-heap memory:
// stacks, metadata) makes the collector run, and the scavenger return
// pages, before that. The limit follows the live set after every check, so
// a growing connection count raises it; GOGC still bounds how often the
// collector runs when the limit is far away.
//
// A burst (a reconnect storm, a handshake flood) allocates much faster
// than the room lasts: a limit that tight would run the collector again and
// again, each time scanning every connection's stack, and double the
// burst's time. So a check that finds more allocated since the last one
// than the room lifts the limit (GOGC alone paces the collector), and the
// first quiet check after it collects and returns the burst's garbage to
// the operating system at once, then sets the limit again.
package memtune

import (
	"context"
	"math"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Config tunes a [Tuner]. The zero value is the default.
type Config struct {
	// Headroom is the share of the live heap kept as room to allocate
	// before the collector runs. Defaults to 0.25.
	Headroom float64
	// MinHeadroom is the least room in bytes, so a small live heap (an
	// instance with few connections in a burst of handshakes) does not
	// collect constantly. Defaults to 16 MiB.
	MinHeadroom int64
	// Interval is how often the limit follows the live heap, and the
	// window a burst is judged over. Defaults to 500ms.
	Interval time.Duration
}

func (c Config) withDefaults() Config {
	if c.Headroom <= 0 {
		c.Headroom = 0.25
	}
	if c.MinHeadroom <= 0 {
		c.MinHeadroom = 16 << 20
	}
	if c.Interval <= 0 {
		c.Interval = 500 * time.Millisecond
	}
	return c
}

// Tuner sets the runtime's soft memory limit from the live heap.
type Tuner struct {
	cfg     Config
	samples []metrics.Sample
	set     func(int64) int64 // debug.SetMemoryLimit; replaced in tests
	free    func()            // debug.FreeOSMemory; replaced in tests
	last    int64
	// allocs is the bytes allocated in total at the last check (primed
	// once there was one); lifted is set while a burst keeps the limit off.
	allocs uint64
	primed bool
	lifted bool
}

// New returns a Tuner. It changes nothing until [Tuner.Tune] or
// [Tuner.Run].
func New(cfg Config) *Tuner {
	return &Tuner{cfg: cfg.withDefaults(), set: debug.SetMemoryLimit, free: debug.FreeOSMemory, samples: []metrics.Sample{
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
		{Name: "/memory/classes/heap/free:bytes"},
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/gc/heap/allocs:bytes"},
	}}
}

// Limit computes the limit for a live heap of live bytes when the runtime
// maps total bytes, of which released are returned to the OS, free are
// free heap pages kept and objects are heap objects (live or not yet
// swept).
func (t *Tuner) Limit(live, total, released, free, objects uint64) int64 {
	other := int64(total) - int64(released) - int64(free) - int64(objects) // stacks, metadata, fragmentation
	return max(other, 0) + int64(live) + t.room(live)
}

// room is the room to allocate above a live heap of live bytes.
func (t *Tuner) room(live uint64) int64 {
	return max(int64(float64(live)*t.cfg.Headroom), t.cfg.MinHeadroom)
}

// figures are the runtime's memory figures one check reads.
type figures struct{ live, total, released, free, objects, allocs uint64 }

func (t *Tuner) read() figures {
	metrics.Read(t.samples)
	v := func(i int) uint64 {
		if t.samples[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return t.samples[i].Value.Uint64()
	}
	return figures{v(0), v(1), v(2), v(3), v(4), v(5)}
}

// Tune checks once: it sets the limit from the current figures, or lifts
// it in a burst, and returns it (math.MaxInt64: lifted).
func (t *Tuner) Tune() int64 { return t.tune(t.read) }

func (t *Tuner) tune(read func() figures) int64 {
	f := read()
	burst := t.primed && f.allocs-t.allocs > uint64(t.room(f.live))
	t.allocs, t.primed = f.allocs, true
	switch {
	case burst:
		if !t.lifted {
			t.lifted = true
			t.set(math.MaxInt64)
			t.last = math.MaxInt64
		}
		return t.last
	case t.lifted:
		// The first quiet check after a burst: its garbage goes back now,
		// not whenever the collector would get to it.
		t.lifted = false
		t.free()
		f = read()
		t.allocs = f.allocs
	}
	limit := t.Limit(f.live, f.total, f.released, f.free, f.objects)
	if t.last != 0 && t.last != math.MaxInt64 && limit < t.last {
		// The live heap shrank (connections closed). A limit below what
		// the heap holds now plus the room would start a collection at
		// once, right after the one that found the heap smaller, with no
		// runway: its marking would fall on whatever allocates (mark
		// assists), a revocation's close among them. So the limit comes
		// down only that far; the next collection, paced against it, lets
		// it down the rest of the way.
		inUse := int64(f.total) - int64(f.released) - int64(f.free)
		limit = max(limit, min(t.last, inUse+t.room(f.live)))
	}
	// A change under 1% is not worth a runtime call.
	if t.last == 0 || t.last == math.MaxInt64 || math.Abs(float64(limit-t.last)) > float64(t.last)/100 {
		t.set(limit)
		t.last = limit
	}
	return t.last
}

// Run tunes every Interval until ctx is done, then restores the runtime's
// default (no limit).
func (t *Tuner) Run(ctx context.Context) {
	tick := time.NewTicker(t.cfg.Interval)
	defer tick.Stop()
	defer t.set(math.MaxInt64)
	for {
		t.Tune()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
