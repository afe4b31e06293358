package gateway

import (
	"sync"
	"time"
)

// maxTombstones bounds the set; past it, expired entries are pruned and, if
// that is not enough, the set starts over (a lost tombstone only means the
// store's own answer decides, as it would without tombstones).
const maxTombstones = 100_000

// tombstones remembers recently revoked session handles for a while, so an
// upgrade that races a revocation (the event can arrive before the store
// delete lands) is refused without asking the store. Safe for concurrent use.
type tombstones struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]time.Time // handle -> expiry
}

func newTombstones(ttl time.Duration) *tombstones {
	return &tombstones{ttl: ttl, m: make(map[string]time.Time)}
}

func (t *tombstones) add(handle string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= maxTombstones {
		for h, exp := range t.m {
			if !now.Before(exp) {
				delete(t.m, h)
			}
		}
		if len(t.m) >= maxTombstones {
			clear(t.m)
		}
	}
	t.m[handle] = now.Add(t.ttl)
}

func (t *tombstones) has(handle string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	exp, ok := t.m[handle]
	if ok && !now.Before(exp) {
		delete(t.m, handle)
		return false
	}
	return ok
}
