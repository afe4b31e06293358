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
//
// For users it remembers when this instance last learned of a revocation of
// all their sessions (local clock only), so an upgrade whose store read may
// predate that revocation can be checked again.
type tombstones struct {
	ttl   time.Duration
	mu    sync.RWMutex
	m     map[string]time.Time // handle -> expiry
	users map[string]time.Time // user id -> when the revocation was seen here
}

func newTombstones(ttl time.Duration) *tombstones {
	return &tombstones{ttl: ttl, m: make(map[string]time.Time), users: make(map[string]time.Time)}
}

// addUser records that all of userID's sessions were revoked, seen at now.
func (t *tombstones) addUser(userID string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.users) >= maxTombstones {
		for u, seen := range t.users {
			if now.Sub(seen) >= t.ttl {
				delete(t.users, u)
			}
		}
		if len(t.users) >= maxTombstones {
			clear(t.users)
		}
	}
	t.users[userID] = now
}

// userRevokedSince reports whether a revocation of all of userID's sessions
// was seen here at or after since.
func (t *tombstones) userRevokedSince(userID string, since time.Time) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	seen, ok := t.users[userID]
	return ok && !seen.Before(since)
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

// has is on every handshake, so it only reads; expired entries go when the
// set overflows (add prunes them).
func (t *tombstones) has(handle string, now time.Time) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	exp, ok := t.m[handle]
	return ok && now.Before(exp)
}
