package presence

import (
	"context"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Memory is the in-process [Store] of embedded mode: one process, so no
// TTLs; Refresh and Stale follow the same rules as in Redis so that the
// [Tracker] behaves the same. Safe for concurrent use.
type Memory struct {
	now func() time.Time

	mu      sync.Mutex
	insts   map[string]*memInst
	users   map[string]map[string]Counts
	seqs    map[string]int64
	refresh map[string]time.Time
}

type memInst struct {
	users map[string]Counts
}

// NewMemory returns an empty memory store; now defaults to time.Now.
func NewMemory(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{now: now, insts: map[string]*memInst{}, users: map[string]map[string]Counts{},
		seqs: map[string]int64{}, refresh: map[string]time.Time{}}
}

// Write implements [Store].
func (m *Memory) Write(_ context.Context, inst string, changes []Change) ([]Transition, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	in := m.insts[inst]
	if in == nil {
		in = &memInst{users: map[string]Counts{}}
		m.insts[inst] = in
	}
	var out []Transition
	for _, c := range changes {
		if c.Conns > 0 {
			in.users[c.UserID] = c.Counts
		} else {
			delete(in.users, c.UserID)
		}
		if t, ok := m.setUserLocked(c.UserID, inst, c.Counts, "connect", "disconnect"); ok {
			out = append(out, t)
		}
	}
	return out, nil
}

// setUserLocked records inst's counts of user and returns the transition
// it caused, if any (the user script's rules).
func (m *Memory) setUserLocked(user, inst string, c Counts, onReason, offReason string) (Transition, bool) {
	u := m.users[user]
	before := len(u)
	if c.Conns > 0 {
		if u == nil {
			u = map[string]Counts{}
			m.users[user] = u
		}
		u[inst] = c
	} else {
		delete(u, inst)
		if len(u) == 0 {
			delete(m.users, user)
		}
	}
	after := len(u)
	switch {
	case before == 0 && after > 0:
		m.seqs[user]++
		return Transition{UserID: user, Online: true, Seq: m.seqs[user], Reason: onReason}, true
	case before > 0 && after == 0:
		m.seqs[user]++
		return Transition{UserID: user, Online: false, Seq: m.seqs[user], Reason: offReason}, true
	}
	return Transition{}, false
}

// Refresh implements [Store].
func (m *Memory) Refresh(_ context.Context, inst string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, existed := m.refresh[inst]
	m.refresh[inst] = m.now()
	return existed, nil
}

// Replace implements [Store].
func (m *Memory) Replace(ctx context.Context, inst string, all []Change) ([]Transition, error) {
	m.mu.Lock()
	old := m.insts[inst]
	m.insts[inst] = &memInst{users: map[string]Counts{}}
	m.refresh[inst] = m.now()
	var gone []Change
	if old != nil {
		for u := range old.users {
			gone = append(gone, Change{UserID: u})
		}
	}
	m.mu.Unlock()
	// Users the old record held that all does not name are gone here.
	keep := make(map[string]bool, len(all))
	for _, c := range all {
		keep[c.UserID] = true
	}
	var changes []Change
	for _, c := range gone {
		if !keep[c.UserID] {
			changes = append(changes, c)
		}
	}
	return m.Write(ctx, inst, append(changes, all...))
}

// Purge implements [Store].
func (m *Memory) Purge(_ context.Context, inst string) ([]Transition, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	in := m.insts[inst]
	delete(m.insts, inst)
	delete(m.refresh, inst)
	if in == nil {
		return nil, nil
	}
	users := make([]string, 0, len(in.users))
	for u := range in.users {
		users = append(users, u)
	}
	sort.Strings(users)
	var out []Transition
	for _, u := range users {
		if t, ok := m.setUserLocked(u, inst, Counts{}, "", "instance gone"); ok {
			out = append(out, t)
		}
	}
	return out, nil
}

// Stale implements [Store].
func (m *Memory) Stale(_ context.Context, older time.Duration) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	var out []string
	for id, t := range m.refresh {
		if now.Sub(t) > older {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out, nil
}

// User implements [Store].
func (m *Memory) User(_ context.Context, userID string) ([]Placement, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Placement
	for inst, c := range m.users[userID] {
		out = append(out, Placement{Instance: inst, Counts: c})
	}
	slices.SortFunc(out, func(a, b Placement) int { return strings.Compare(a.Instance, b.Instance) })
	return out, nil
}

// Page implements [Store].
func (m *Memory) Page(_ context.Context, instances []string, after string, limit int) ([]User, string, error) {
	if limit <= 0 {
		return nil, "", nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	byUser := map[string][]Placement{}
	for _, inst := range instances {
		in := m.insts[inst]
		if in == nil {
			continue
		}
		for u, c := range in.users {
			if u > after {
				byUser[u] = append(byUser[u], Placement{Instance: inst, Counts: c})
			}
		}
	}
	out, more := collectPage(byUser, limit)
	next := ""
	if more {
		next = out[len(out)-1].UserID
	}
	return out, next, nil
}

// collectPage returns the first limit users of byUser in byte order, each
// with its placements sorted by instance, and whether byUser held more.
func collectPage(byUser map[string][]Placement, limit int) ([]User, bool) {
	ids := make([]string, 0, len(byUser))
	for u := range byUser {
		ids = append(ids, u)
	}
	sort.Strings(ids)
	more := len(ids) > limit
	if more {
		ids = ids[:limit]
	}
	out := make([]User, 0, len(ids))
	for _, u := range ids {
		ps := byUser[u]
		slices.SortFunc(ps, func(a, b Placement) int { return strings.Compare(a.Instance, b.Instance) })
		out = append(out, User{UserID: u, Instances: ps})
	}
	return out, more
}

func sortPlacements(ps []Placement) {
	slices.SortFunc(ps, func(a, b Placement) int { return strings.Compare(a.Instance, b.Instance) })
}
