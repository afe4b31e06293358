package connmgr

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// registry indexes connections by id, session handle and user id. Each index
// is sharded by its own key, so a fan-out to one session or user takes one
// shard's read lock. Locks are held only to copy pointers out.
type registry struct {
	seed   maphash.Seed
	shards []shard
}

type shard struct {
	mu        sync.RWMutex
	byID      map[string]*conn
	bySession map[string][]*conn
	byUser    map[string][]*conn
}

func newRegistry(n int) registry {
	r := registry{seed: maphash.MakeSeed(), shards: make([]shard, n)}
	for i := range r.shards {
		r.shards[i].byID = make(map[string]*conn)
		r.shards[i].bySession = make(map[string][]*conn)
		r.shards[i].byUser = make(map[string][]*conn)
	}
	return r
}

func (r *registry) shardFor(key string) *shard {
	return &r.shards[maphash.String(r.seed, key)%uint64(len(r.shards))]
}

// add indexes c unless draining is set; the check happens under the id
// shard's lock so that a drain snapshot taken after draining was set cannot
// miss a connection. The caller holds c.mu, so no close can interleave with a
// half-done registration.
func (r *registry) add(c *conn, draining *atomic.Bool) error {
	s := r.shardFor(c.info.ID)
	s.mu.Lock()
	if draining.Load() {
		s.mu.Unlock()
		return ErrDraining
	}
	if _, dup := s.byID[c.info.ID]; dup {
		s.mu.Unlock()
		return ErrDuplicateID
	}
	s.byID[c.info.ID] = c
	s.mu.Unlock()

	if h := c.info.Handle; h != "" {
		s := r.shardFor(h)
		s.mu.Lock()
		s.bySession[h] = append(s.bySession[h], c)
		s.mu.Unlock()
	}
	if u := c.info.UserID; u != "" {
		s := r.shardFor(u)
		s.mu.Lock()
		s.byUser[u] = append(s.byUser[u], c)
		s.mu.Unlock()
	}
	return nil
}

// remove unindexes c; it is idempotent. The caller holds c.mu.
func (r *registry) remove(c *conn) {
	s := r.shardFor(c.info.ID)
	s.mu.Lock()
	if s.byID[c.info.ID] == c {
		delete(s.byID, c.info.ID)
	}
	s.mu.Unlock()

	if h := c.info.Handle; h != "" {
		s := r.shardFor(h)
		s.mu.Lock()
		removeFrom(s.bySession, h, c)
		s.mu.Unlock()
	}
	if u := c.info.UserID; u != "" {
		s := r.shardFor(u)
		s.mu.Lock()
		removeFrom(s.byUser, u, c)
		s.mu.Unlock()
	}
}

func removeFrom(idx map[string][]*conn, key string, c *conn) {
	list := idx[key]
	for i, x := range list {
		if x != c {
			continue
		}
		last := len(list) - 1
		list[i] = list[last]
		list[last] = nil
		list = list[:last]
		if len(list) == 0 {
			delete(idx, key)
		} else {
			idx[key] = list
		}
		return
	}
}

// lookup appends the connections indexed under key (by session or user) to
// buf and returns it.
func (r *registry) lookup(bySession bool, key string, buf []*conn) []*conn {
	if key == "" {
		return buf
	}
	s := r.shardFor(key)
	s.mu.RLock()
	if bySession {
		buf = append(buf, s.bySession[key]...)
	} else {
		buf = append(buf, s.byUser[key]...)
	}
	s.mu.RUnlock()
	return buf
}

// snapshotShard appends every connection of shard i to buf and returns it.
func (r *registry) snapshotShard(i int, buf []*conn) []*conn {
	s := &r.shards[i]
	s.mu.RLock()
	for _, c := range s.byID {
		buf = append(buf, c)
	}
	s.mu.RUnlock()
	return buf
}
