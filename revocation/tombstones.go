package revocation

import (
	"sync"
	"time"
)

// tombstones remembers revoked session handles so a handshake that races a
// revocation (the event can arrive before the store delete lands, and a
// queued delete has not landed at all) is refused without a store read.
// Safe for concurrent use; [tombstones.has] is on every handshake, so it
// only takes the read lock.
//
// A tombstone is either confirmed, with an expiry ttl after it was set, or
// held by a revocation the store has not confirmed yet: a held tombstone
// never expires and is never evicted, until its last hold is released.
// Confirmed tombstones are bounded by max; past it the oldest go first,
// which with one ttl for all is also the first to expire.
type tombstones struct {
	ttl time.Duration
	max int

	mu   sync.RWMutex
	m    map[string]tomb
	fifo []fifoEntry // confirmed tombstones, oldest first; stale entries are skipped
	head int         // fifo[head:] is live
	live int         // confirmed tombstones (those tracked by fifo)
	seq  uint64
}

type tomb struct {
	exp   time.Time // confirmed: refused until then
	holds int       // > 0: held by queued revocations
	seq   uint64    // matches the fifo entry that tracks it; 0 when held
}

type fifoEntry struct {
	handle string
	seq    uint64
}

func newTombstones(ttl time.Duration, max int) *tombstones {
	return &tombstones{ttl: ttl, max: max, m: make(map[string]tomb)}
}

// has reports whether handle is tombstoned at now.
func (t *tombstones) has(handle string, now time.Time) bool {
	t.mu.RLock()
	e, ok := t.m[handle]
	t.mu.RUnlock()
	return ok && (e.holds > 0 || now.Before(e.exp))
}

// add tombstones handle until now+ttl. A held tombstone stays held; its
// expiry starts when the last hold is released.
func (t *tombstones) add(handle string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.m[handle]; ok && e.holds > 0 {
		return
	}
	t.confirmLocked(handle, now)
}

// hold tombstones handle until a matching release.
func (t *tombstones) hold(handle string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[handle]
	if ok && e.holds == 0 && e.seq != 0 {
		t.live-- // no longer tracked by fifo: its entry there goes stale
	}
	e.holds++
	e.seq = 0
	t.m[handle] = e
}

// release drops one hold; the last one turns the tombstone into a
// confirmed one that expires ttl after now.
func (t *tombstones) release(handle string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[handle]
	if !ok || e.holds == 0 {
		return
	}
	e.holds--
	t.m[handle] = e
	if e.holds == 0 {
		t.confirmLocked(handle, now)
	}
}

// confirmLocked (re)tracks a tombstone that is not held, expiring at
// now+ttl, then prunes expired ones and evicts the oldest past max.
func (t *tombstones) confirmLocked(handle string, now time.Time) {
	e, ok := t.m[handle]
	if !ok || e.seq == 0 {
		t.live++
	}
	t.seq++
	t.m[handle] = tomb{exp: now.Add(t.ttl), seq: t.seq}
	t.fifo = append(t.fifo, fifoEntry{handle: handle, seq: t.seq})
	for t.head < len(t.fifo) {
		f := t.fifo[t.head]
		cur, ok := t.m[f.handle]
		switch {
		case !ok || cur.seq != f.seq:
			// Stale: re-added, held, or gone since.
		case t.live > t.max || !now.Before(cur.exp):
			delete(t.m, f.handle)
			t.live--
		default:
			t.compactLocked()
			return
		}
		t.fifo[t.head] = fifoEntry{}
		t.head++
	}
	t.compactLocked()
}

// compactLocked keeps fifo's memory proportional to the live tombstones:
// it drops the consumed prefix and, when re-added handles left too many
// stale entries behind, the stale ones.
func (t *tombstones) compactLocked() {
	n := len(t.fifo) - t.head
	switch {
	case n > 2*t.live+64:
		kept := make([]fifoEntry, 0, t.live+64)
		for _, f := range t.fifo[t.head:] {
			if cur, ok := t.m[f.handle]; ok && cur.seq == f.seq {
				kept = append(kept, f)
			}
		}
		t.fifo, t.head = kept, 0
	case t.head > 64 && t.head > n:
		t.fifo = append(t.fifo[:0], t.fifo[t.head:]...)
		t.head = 0
	}
}

// settled returns the confirmed tombstones set at least age before now and
// not expired, oldest first: revocations the store confirmed long enough
// ago that any delete still in flight for them has finished.
func (t *tombstones) settled(now time.Time, age time.Duration) []string {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var out []string
	for _, f := range t.fifo[t.head:] {
		cur, ok := t.m[f.handle]
		if !ok || cur.seq != f.seq || cur.holds > 0 {
			continue // stale entry
		}
		if cur.exp.Add(-t.ttl).After(now.Add(-age)) {
			break // set too recently, and so is every later one
		}
		if now.Before(cur.exp) {
			out = append(out, f.handle)
		}
	}
	return out
}

// size returns the number of tombstones, held ones included (tests).
func (t *tombstones) size() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.m)
}
