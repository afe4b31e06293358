package revocation

import (
	"sync"
	"time"

	"github.com/sessiongate/sessiongate/session"
)

// logins remembers the sessions this instance created recently, so the
// reconcile pass can check that each is in its user's index until a store
// failover can no longer undo the index write (see [Revoker.auditLogins]).
// Entries are kept in creation order; past max the oldest go first. Safe
// for concurrent use: add is on every login, the rest on the reconcile
// goroutine.
type logins struct {
	ttl time.Duration
	max int

	mu sync.Mutex
	q  []login // oldest first
}

type login struct {
	ref session.IndexRef
	at  time.Time
}

func newLogins(ttl time.Duration, max int) *logins { return &logins{ttl: ttl, max: max} }

// add remembers a session created at now.
func (l *logins) add(ref session.IndexRef, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.q) - l.max + 1; n > 0 {
		// Drop the oldest by slicing: no copy of the rest per login (the
		// next append that outgrows the array moves only what is live).
		clear(l.q[:n])
		l.q = l.q[n:]
	}
	l.q = append(l.q, login{ref: ref, at: now})
}

// due forgets the logins older than ttl and returns those older than
// grace: younger ones may still have their writes in flight.
func (l *logins) due(now time.Time, grace time.Duration) []session.IndexRef {
	l.mu.Lock()
	defer l.mu.Unlock()
	keep := l.q[:0]
	var out []session.IndexRef
	for _, e := range l.q {
		if !now.Before(e.at.Add(l.ttl)) {
			continue
		}
		keep = append(keep, e)
		if !now.Before(e.at.Add(grace)) {
			out = append(out, e.ref)
		}
	}
	clear(l.q[len(keep):])
	l.q = keep
	return out
}

// forget drops the logins of handles: their checks are over.
func (l *logins) forget(handles []string) {
	if len(handles) == 0 {
		return
	}
	gone := make(map[string]struct{}, len(handles))
	for _, h := range handles {
		gone[h] = struct{}{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	keep := l.q[:0]
	for _, e := range l.q {
		if _, ok := gone[e.ref.Handle]; !ok {
			keep = append(keep, e)
		}
	}
	clear(l.q[len(keep):])
	l.q = keep
}

// len is the number of logins remembered.
func (l *logins) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.q)
}
