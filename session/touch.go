package session

import (
	"sync"
	"time"
)

const (
	touchShards = 16
	// touchShardMax bounds one shard's current generation; past it the
	// shard rotates early. A forgotten entry only costs one extra TTL
	// extension, never correctness.
	touchShardMax = 1 << 14
)

// toucher remembers when this process last extended each session's idle
// TTL, so that a busy session costs one extension per interval instead of one
// per request. Memory is bounded: each shard keeps two generations of
// entries, the current one and the previous one, and drops the previous one
// whenever the current one is an interval old or full. So an entry lives at
// most two intervals and a shard holds at most 2*touchShardMax entries.
// Safe for concurrent use.
type toucher struct {
	interval time.Duration
	max      int // per shard and generation
	shards   [touchShards]touchShard
}

type touchShard struct {
	mu        sync.Mutex
	cur, prev map[string]time.Time
	rotated   time.Time
}

func newToucher(interval time.Duration) *toucher {
	return &toucher{interval: interval, max: touchShardMax}
}

func (t *toucher) shard(handle string) *touchShard {
	// Handles are hex HMACs: their last digit spreads evenly.
	var v byte
	if handle != "" {
		c := handle[len(handle)-1]
		if c >= 'a' {
			v = c - 'a' + 10
		} else {
			v = c - '0'
		}
	}
	return &t.shards[v%touchShards]
}

// due reports whether handle's idle TTL should be extended at now, and if
// so records now as its last touch (call forget if the extension fails).
func (t *toucher) due(handle string, now time.Time) bool {
	s := t.shard(handle)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rotateLocked(now, t.interval, t.max)
	last, ok := s.cur[handle]
	if !ok {
		last, ok = s.prev[handle]
	}
	if ok {
		if d := now.Sub(last); d >= 0 && d < t.interval {
			return false
		}
	}
	s.cur[handle] = now
	delete(s.prev, handle)
	return true
}

// mark records now as handle's last touch (e.g. at creation, which sets the
// TTL anyway).
func (t *toucher) mark(handle string, now time.Time) {
	s := t.shard(handle)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rotateLocked(now, t.interval, t.max)
	s.cur[handle] = now
}

// rotateLocked starts a new generation when the current one is an interval
// old or full. Entries of the dropped generation are at least an interval
// old (or the shard was full), so forgetting them costs at most one extra
// TTL extension each.
func (s *touchShard) rotateLocked(now time.Time, interval time.Duration, max int) {
	if s.cur == nil || now.Sub(s.rotated) >= interval || now.Before(s.rotated) || len(s.cur) >= max {
		s.prev, s.cur, s.rotated = s.cur, make(map[string]time.Time), now
	}
}

// forget drops handle, so its next load extends the TTL again.
func (t *toucher) forget(handle string) {
	s := t.shard(handle)
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.cur, handle)
	delete(s.prev, handle)
}

// size is the number of remembered entries (tests).
func (t *toucher) size() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		n += len(s.cur) + len(s.prev)
		s.mu.Unlock()
	}
	return n
}
