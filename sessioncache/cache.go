// Package sessioncache keeps the sessions of recent handshakes in memory
// so a client that reconnects (a page reload, a network change, a resume
// storm after an instance died) is authenticated without a Redis round
// trip.
//
// A cache must never let a revoked session connect. Every session is
// destroyed through the revocation unit, which tombstones the handle on
// its own instance and publishes an event that every other instance
// receives; so this cache
//   - serves only while the instance's bus is proven live (subscribed,
//     and its own heartbeat comes back: the caller's live func), and
//     empties itself the moment it is not; the caller also empties it at
//     every change of that (Clear: a gap, a resubscription, liveness lost
//     or restored), so a store read made while events could be lost is
//     never kept once they no longer can be;
//   - is told of every revocation event before the revocation unit
//     tombstones the handle ([Cache.Invalidate]), and emptied whole on any
//     bus gap and on a store reset ([Cache.Clear]): an event pub/sub may
//     have lost can have named any session;
//   - never stores what it read before an invalidation that happened while
//     it read (a fill that races a revocation is dropped);
//   - keeps an entry at most TTL, which the gateway bounds by the
//     tombstone lifetime (a revocation on this instance is refused by its
//     tombstone for longer than any entry read before it can live) and by
//     the touch interval (the Redis key's idle TTL is always extended by a
//     store read at least that often).
//
// What remains is the time an event takes to arrive: a handshake on
// instance B that starts after instance A deleted a session but before A's
// event reached B is accepted from the cache, registered, and closed with
// 4500 when the event arrives (B's tombstone check at registration, or the
// event's close) — the same outcome as a connection opened just before the
// revocation. A bus that dies silently is noticed within the liveness
// timeout; the cache stops serving then, and the reconcile pass that
// follows closes whatever the lost events revoked.
package sessioncache

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sessiongate/sessiongate/session"
)

// Loader reads a session from the store; session.Store satisfies it.
type Loader interface {
	Load(ctx context.Context, handle string) (session.Session, bool, error)
}

// Config tunes a [Cache]. Zero fields take their defaults.
type Config struct {
	// TTL is the longest an entry is served. 0 turns the cache off
	// (every Load goes to the store).
	TTL time.Duration
	// MaxEntries bounds the entries; past it a fill evicts an entry.
	// Defaults to 100000.
	MaxEntries int
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// Cache is a session cache in front of a [Loader]. Safe for concurrent
// use; it starts no goroutines ([Cache.Run] is the caller's to start).
type Cache struct {
	store Loader
	live  func() bool
	cfg   Config

	mu      sync.Mutex
	entries map[string]entry
	// seq counts invalidations (changed under mu); a fill that saw another
	// value before it asked whether the bus is live is not stored.
	seq atomic.Uint64

	hits, misses atomic.Uint64
}

// entry is what a handshake needs of a session, and no more: 48 bytes a
// map slot instead of a whole session's 152.
type entry struct {
	userID  string
	expires time.Time // the session's absolute expiry
	until   time.Time // the entry's end (TTL)
}

// fresh reports whether e may be served at now: within its TTL and its
// session's lifetime.
func (e entry) fresh(now time.Time) bool { return now.Before(e.until) && now.Before(e.expires) }

// handshakeView is the part of s a handshake uses: handle, user, absolute
// expiry. Lookup returns only that, cached or not, so that callers cannot
// come to depend on the rest.
func handshakeView(s session.Session) session.Session {
	return session.Session{Handle: s.Handle, UserID: s.UserID, ExpiresAt: s.ExpiresAt}
}

// New returns a cache reading through store, serving only while live
// returns true.
func New(cfg Config, store Loader, live func() bool) *Cache {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = 100000
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Cache{store: store, live: live, cfg: cfg, entries: make(map[string]entry)}
}

// Lookup returns what a handshake needs of handle's session: its Handle,
// UserID and ExpiresAt, the rest left zero (Data, the times of creation
// and authentication), cached or not, so that callers cannot come to
// depend on it. It comes from the cache when an entry is fresh and the bus
// is live, else from the store, caching a found, unexpired session.
func (c *Cache) Lookup(ctx context.Context, handle string) (session.Session, bool, error) {
	if c.cfg.TTL <= 0 {
		s, found, err := c.store.Load(ctx, handle)
		return handshakeView(s), found, err
	}
	now := c.cfg.Now()
	// The generation before live: a caller that makes the bus not live
	// and then calls Clear either made this live false, or its Clear
	// changes seq after this read and the fill below is dropped.
	seq := c.seq.Load()
	live := c.live()
	c.mu.Lock()
	if !live {
		// Events may be lost from now on: nothing cached before can be
		// trusted once the bus is back.
		c.clearLocked()
	} else if e, ok := c.entries[handle]; ok {
		if e.fresh(now) {
			c.mu.Unlock()
			c.hits.Add(1)
			return session.Session{Handle: handle, UserID: e.userID, ExpiresAt: e.expires}, true, nil
		}
		delete(c.entries, handle)
	}
	c.mu.Unlock()
	c.misses.Add(1)

	s, found, err := c.store.Load(ctx, handle)
	s = handshakeView(s)
	if err != nil || !found || !live {
		return s, found, err
	}
	now = c.cfg.Now()
	if s.Expired(now) {
		return s, found, err
	}
	c.mu.Lock()
	if c.seq.Load() == seq {
		if len(c.entries) >= c.cfg.MaxEntries {
			for h := range c.entries { // any one: a random eviction
				delete(c.entries, h)
				break
			}
		}
		c.entries[handle] = entry{userID: s.UserID, expires: s.ExpiresAt, until: now.Add(c.cfg.TTL)}
	}
	c.mu.Unlock()
	return s, found, err
}

// Invalidate forgets the sessions named by handles. Call it for every
// revocation event, before the revocation unit handles the event.
func (c *Cache) Invalidate(handles ...string) {
	c.mu.Lock()
	c.seq.Add(1)
	for _, h := range handles {
		delete(c.entries, h)
	}
	c.mu.Unlock()
}

// Clear forgets every session: on a bus gap, a store reset, or a
// revocation event that does not name its sessions.
func (c *Cache) Clear() {
	c.mu.Lock()
	c.clearLocked()
	c.mu.Unlock()
}

func (c *Cache) clearLocked() {
	c.seq.Add(1)
	if len(c.entries) > 0 {
		c.entries = make(map[string]entry)
	}
}

// Run sweeps the entries past their TTL every TTL until ctx is done. An
// entry is never served past its TTL anyway; without the sweep it would
// still be kept (an idle instance's cache would hold every handshake's
// session until MaxEntries evicts it), and its memory with it.
func (c *Cache) Run(ctx context.Context) {
	if c.cfg.TTL <= 0 {
		return
	}
	t := time.NewTicker(c.cfg.TTL)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.Sweep()
		}
	}
}

// Sweep drops the entries past their TTL or their session's expiry and
// returns how many it dropped. When most of the map went, it is rebuilt:
// a Go map keeps its size after deletes.
func (c *Cache) Sweep() int {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for h, e := range c.entries {
		if !e.fresh(now) {
			delete(c.entries, h)
			n++
		}
	}
	if n > len(c.entries) {
		m := make(map[string]entry, len(c.entries))
		for h, e := range c.entries {
			m[h] = e
		}
		c.entries = m
	}
	return n
}

// Len returns the number of entries (fresh or not).
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Hits and Misses count Loads served from the cache and from the store.
func (c *Cache) Hits() uint64   { return c.hits.Load() }
func (c *Cache) Misses() uint64 { return c.misses.Load() }
