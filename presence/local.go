package presence

import (
	"hash/maphash"
	"sync"
)

// localShards is how many locks the local counts are spread over, so that
// handshakes of different users rarely contend.
const localShards = 32

// local is what this instance holds of one user, and what it last wrote.
type local struct {
	conns int
	// handle and handleN are the user's first session and its
	// connections; more holds the others (most users have one session,
	// which then costs no map), with a negative count for a close seen
	// before its open.
	handle  string
	handleN int
	more    map[string]int
	flushed Counts
	dirty   bool
}

func (l *local) counts() Counts {
	if l.conns <= 0 {
		return Counts{}
	}
	n := 0
	if l.handleN > 0 {
		n++
	}
	for _, c := range l.more {
		if c > 0 {
			n++
		}
	}
	return Counts{Conns: l.conns, Sessions: n}
}

func (l *local) addSession(h string, d int) {
	switch {
	case h == "":
	case l.handleN > 0 && l.handle == h, l.handleN == 0 && d > 0 && l.more[h] == 0:
		l.handle = h
		l.handleN += d
	default:
		// A negative count is a close seen before its open.
		n := l.more[h] + d
		if n != 0 {
			if l.more == nil {
				l.more = make(map[string]int)
			}
			l.more[h] = n
		} else {
			delete(l.more, h)
		}
	}
}

type localShard struct {
	mu    sync.Mutex
	users map[string]*local
	// dirty lists the entries marked dirty, with their keys: a flush
	// reads them without a map lookup each. An entry marked dirty stays in
	// users until the flush that takes it.
	dirty []dirtyUser
}

type dirtyUser struct {
	user string
	l    *local
}

// counter is the instance's own counts of users, sharded.
type counter struct {
	seed   maphash.Seed
	shards [localShards]localShard
}

func newCounter() *counter {
	c := &counter{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].users = make(map[string]*local)
	}
	return c
}

func (c *counter) shard(user string) *localShard {
	return &c.shards[maphash.String(c.seed, user)%localShards]
}

// add counts d connections (1 or -1) of user in session handle.
func (c *counter) add(user, handle string, d int) {
	s := c.shard(user)
	s.mu.Lock()
	l := s.users[user]
	if l == nil {
		// A close seen before its open (the hooks of one connection run
		// on different goroutines) leaves -1 for the open to cancel.
		l = &local{}
		s.users[user] = l
	}
	l.conns += d
	l.addSession(handle, d)
	if !l.dirty {
		l.dirty = true
		s.dirty = append(s.dirty, dirtyUser{user, l})
	}
	s.mu.Unlock()
}

// takeDirty returns the changes of users whose counts differ from what was
// last written, and clears their dirty marks. all takes every user.
func (c *counter) takeDirty(all bool) []Change {
	var out []Change
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		if all {
			for u, l := range s.users {
				l.dirty = false
				switch {
				case l.conns < 0:
					// Its open is still to come: keep the entry.
				case l.conns > 0:
					out = append(out, Change{UserID: u, Counts: l.counts()})
				case l.flushed.Conns > 0:
					// Gone since the last write: the user's record may
					// still name this instance (records that expired
					// rather than being purged).
					out = append(out, Change{UserID: u})
				default:
					delete(s.users, u)
				}
			}
		} else {
			for _, d := range s.dirty {
				l := d.l
				l.dirty = false
				if now := l.counts(); now != l.flushed {
					out = append(out, Change{UserID: d.user, Counts: now})
				} else if l.conns == 0 {
					delete(s.users, d.user) // came and went between two flushes
				}
			}
		}
		clear(s.dirty) // every mark is cleared: hold no entry
		s.dirty = s.dirty[:0]
		s.mu.Unlock()
	}
	return out
}

// written records that changes are what the store now holds; replaced
// means they are all it holds.
func (c *counter) written(changes []Change, replaced bool) {
	if replaced {
		for i := range c.shards {
			s := &c.shards[i]
			s.mu.Lock()
			for _, l := range s.users {
				l.flushed = Counts{}
			}
			s.mu.Unlock()
		}
	}
	for _, ch := range changes {
		s := c.shard(ch.UserID)
		s.mu.Lock()
		if l := s.users[ch.UserID]; l != nil {
			l.flushed = ch.Counts
			if l.conns == 0 && !l.dirty {
				delete(s.users, ch.UserID)
			}
		}
		s.mu.Unlock()
	}
}

// failed marks the users of changes dirty again, so the next flush
// retries them.
func (c *counter) failed(changes []Change) {
	for _, ch := range changes {
		s := c.shard(ch.UserID)
		s.mu.Lock()
		if l := s.users[ch.UserID]; l != nil && !l.dirty {
			l.dirty = true
			s.dirty = append(s.dirty, dirtyUser{ch.UserID, l})
		}
		s.mu.Unlock()
	}
}

// users returns how many users hold a connection here.
func (c *counter) users() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for _, l := range s.users {
			if l.conns > 0 {
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}
