package session

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"sync"
	"time"
)

// minSweepWrites is the least number of writes between two full sweeps of
// a MemoryStore.
const minSweepWrites = 64

// MemoryStore is the in-process [Store] for embedded mode and tests. It
// behaves like [RedisStore] (the same contract tests pass): sessions idle out
// after IdleTTL without activity and end at their absolute lifetime. Expired
// sessions are dropped lazily: when read, and by a full sweep once every
// max(64, number of sessions) writes, so the sweep costs O(1) amortized per
// write and memory stays bounded by the live sessions. It starts no
// goroutines, stores payloads in plaintext (it never leaves the process) and
// is safe for concurrent use.
type MemoryStore struct {
	codec *Codec
	opts  Options
	touch *toucher
	// generation is this store's [Store.Generation]; set once, read-only.
	generation string

	mu       sync.Mutex
	sessions map[string]*memEntry           // by handle
	users    map[string]map[string]struct{} // user id -> handles
	writes   int                            // since the last sweep
}

type memEntry struct {
	s        Session
	deadline time.Time // idle deadline: the "key TTL"
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore; codec must not be nil.
// Options that [Options.Validate] rejects are repaired rather than refused: a
// non-positive duration takes its default and a TouchInterval not shorter
// than IdleTTL becomes IdleTTL/2.
func NewMemoryStore(codec *Codec, opts Options) *MemoryStore {
	o, err := opts.withDefaults()
	if err != nil {
		if o.IdleTTL < time.Millisecond {
			o.IdleTTL = DefaultIdleTTL
		}
		if o.Lifetime < time.Millisecond {
			o.Lifetime = DefaultLifetime
		}
		if o.TouchInterval < 0 || o.TouchInterval >= o.IdleTTL {
			o.TouchInterval = o.IdleTTL / 2
		}
	}
	return &MemoryStore{
		codec:      codec,
		opts:       o,
		touch:      newToucher(o.TouchInterval),
		generation: newGeneration(),
		sessions:   make(map[string]*memEntry),
		users:      make(map[string]map[string]struct{}),
	}
}

// Create implements [Store].
func (m *MemoryStore) Create(ctx context.Context, userID string, data json.RawMessage) (string, Session, error) {
	if err := ctx.Err(); err != nil {
		return "", Session{}, err
	}
	if err := checkUserID(userID); err != nil {
		return "", Session{}, err
	}
	data, err := normalizeData(data)
	if err != nil {
		return "", Session{}, err
	}
	token, handle, err := m.codec.New()
	if err != nil {
		return "", Session{}, err
	}
	now := m.opts.Now()
	s := newSession(handle, userID, data, now, m.opts.Lifetime)

	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.sessions[handle]; dup {
		return "", Session{}, errors.New("session: create: session already exists")
	}
	m.sessions[handle] = &memEntry{s: s, deadline: idleDeadline(now, s.ExpiresAt, m.opts.IdleTTL)}
	idx := m.users[userID]
	if idx == nil {
		idx = make(map[string]struct{})
		m.users[userID] = idx
	}
	idx[handle] = struct{}{}
	m.touch.mark(handle, now)
	m.wroteLocked(now)
	return token, cloneSession(s), nil
}

// Get implements [Store].
func (m *MemoryStore) Get(ctx context.Context, handle string) (Session, bool, error) {
	return m.read(ctx, handle, false)
}

// Load implements [Store].
func (m *MemoryStore) Load(ctx context.Context, handle string) (Session, bool, error) {
	return m.read(ctx, handle, true)
}

func (m *MemoryStore) read(ctx context.Context, handle string, touch bool) (Session, bool, error) {
	if err := ctx.Err(); err != nil {
		return Session{}, false, err
	}
	now := m.opts.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.liveLocked(handle, now)
	if e == nil {
		return Session{}, false, nil
	}
	if touch && m.touch.due(handle, now) {
		e.deadline = idleDeadline(now, e.s.ExpiresAt, m.opts.IdleTTL)
	}
	return cloneSession(e.s), true, nil
}

// liveLocked returns handle's entry, or nil (deleting it) if it is absent
// or expired at now.
func (m *MemoryStore) liveLocked(handle string, now time.Time) *memEntry {
	e := m.sessions[handle]
	if e == nil {
		return nil
	}
	if !now.Before(e.deadline) || e.s.Expired(now) {
		m.deleteLocked(e.s)
		return nil
	}
	return e
}

func (m *MemoryStore) deleteLocked(s Session) {
	delete(m.sessions, s.Handle)
	m.touch.forget(s.Handle)
	if idx := m.users[s.UserID]; idx != nil {
		delete(idx, s.Handle)
		if len(idx) == 0 {
			delete(m.users, s.UserID)
		}
	}
}

// Update implements [Store].
func (m *MemoryStore) Update(ctx context.Context, s Session) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s, err := checkUpdate(s)
	if err != nil {
		return err
	}
	now := m.opts.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.liveLocked(s.Handle, now)
	if e == nil {
		return ErrNotFound
	}
	if s.Expired(now) {
		m.deleteLocked(e.s)
		return ErrNotFound
	}
	if s.ExpiresAt.After(e.s.ExpiresAt) {
		return errExpiryLater
	}
	e.s = s
	// Not a touch, but never past the (possibly earlier) lifetime.
	if e.deadline.After(s.ExpiresAt) {
		e.deadline = s.ExpiresAt
	}
	m.wroteLocked(now)
	return nil
}

// Destroy implements [Store].
func (m *MemoryStore) Destroy(ctx context.Context, handle string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	now := m.opts.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.liveLocked(handle, now)
	if e == nil {
		return false, nil
	}
	m.deleteLocked(e.s)
	m.wroteLocked(now)
	return true, nil
}

// DestroyUser implements [Store].
func (m *MemoryStore) DestroyUser(ctx context.Context, userID string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	now := m.opts.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	var destroyed []string
	for h := range m.users[userID] {
		if e := m.liveLocked(h, now); e != nil {
			m.deleteLocked(e.s)
			destroyed = append(destroyed, h)
		}
	}
	delete(m.users, userID)
	m.wroteLocked(now)
	sort.Strings(destroyed)
	return destroyed, nil
}

// ListUser implements [Store]. Sessions are ordered by creation time.
func (m *MemoryStore) ListUser(ctx context.Context, userID string) ([]Session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	now := m.opts.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Session
	idx := m.users[userID]
	for h := range idx {
		if e := m.liveLocked(h, now); e != nil {
			out = append(out, cloneSession(e.s))
		} else {
			delete(idx, h) // dangling
		}
	}
	if len(idx) == 0 {
		delete(m.users, userID)
	}
	sortSessions(out)
	return out, nil
}

// Exists implements [Store].
func (m *MemoryStore) Exists(ctx context.Context, handles []string, touch bool) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]bool, len(handles))
	now := m.opts.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, h := range handles {
		e := m.liveLocked(h, now)
		if e == nil {
			continue
		}
		out[i] = true
		if touch {
			// A fresh idle TTL, no throttle, never past the lifetime.
			e.deadline = idleDeadline(now, e.s.ExpiresAt, m.opts.IdleTTL)
		}
	}
	return out, nil
}

// Indexed implements [Store].
func (m *MemoryStore) Indexed(ctx context.Context, refs []IndexRef) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]bool, len(refs))
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, ref := range refs {
		_, out[i] = m.users[ref.UserID][ref.Handle]
	}
	return out, nil
}

// wroteLocked counts a write and sweeps once the writes since the last
// sweep reach max(minSweepWrites, live sessions): O(1) amortized.
func (m *MemoryStore) wroteLocked(now time.Time) {
	m.writes++
	if m.writes < minSweepWrites || m.writes < len(m.sessions) {
		return
	}
	m.writes = 0
	for h := range m.sessions {
		m.liveLocked(h, now)
	}
}

// len is the number of stored sessions, live or not yet swept (tests).
func (m *MemoryStore) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sessions)
}
