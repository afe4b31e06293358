package presence

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Config configures a [Tracker]. Zero fields take their defaults.
type Config struct {
	// Instance is this instance's id, as in its heartbeats. Required.
	Instance string
	// FlushInterval is how often the users that changed are written to
	// the store: presence lags connections by up to this (plus one round
	// trip). Defaults to 100ms.
	FlushInterval time.Duration
	// Interval is the instance heartbeat period: the records' TTL is
	// refreshed and gone instances are looked for this often. Defaults to
	// 5s.
	Interval time.Duration
	// MissedBeats is how many intervals without a refresh make an
	// instance's records purgeable. Defaults to 3.
	MissedBeats int
	// MaxPendingEvents bounds the transitions waiting for Emit (the
	// inbound queue is down); past it the oldest are dropped. Defaults to
	// 10000.
	MaxPendingEvents int
}

func (c Config) withDefaults() Config {
	if c.FlushInterval <= 0 {
		c.FlushInterval = 100 * time.Millisecond
	}
	if c.Interval <= 0 {
		c.Interval = 5 * time.Second
	}
	if c.MissedBeats <= 0 {
		c.MissedBeats = 3
	}
	if c.MaxPendingEvents <= 0 {
		c.MaxPendingEvents = 10000
	}
	return c
}

// Deps are a [Tracker]'s collaborators. Store, Alive and Log are required.
type Deps struct {
	Store Store
	// Alive returns the ids of the instances alive in the cluster view
	// (heartbeat seen within MissedBeats intervals). Readers report only
	// these; purges skip them.
	Alive func() []string
	// Emit, when not nil, receives the transitions this instance decided,
	// in order, from Run's goroutine. An error keeps them all for the next
	// flush (at-least-once: the ones Emit had queued are queued again).
	Emit func(ctx context.Context, ts []Transition) error
	Log  *zap.Logger
	// Metrics, when not nil, is where the tracker registers its metrics.
	Metrics prometheus.Registerer
}

// Tracker is one instance's presence: it counts the instance's
// connections, writes them to the store, keeps its records alive, purges
// gone instances' records and answers reads. Open and Close are cheap and
// safe for concurrent use from connection goroutines; Run runs once.
type Tracker struct {
	cfg     Config
	d       Deps
	log     *zap.Logger
	m       *metrics
	counter *counter

	flushMu     sync.Mutex // serialises flushes and purges of self
	needReplace atomic.Bool
	pending     []Transition // guarded by flushMu
	flushFailed bool         // guarded by flushMu
	emitFailed  bool         // guarded by flushMu
	dropLogged  bool         // guarded by flushMu: once per outage
}

// New returns a tracker. It starts nothing.
func New(cfg Config, d Deps) (*Tracker, error) {
	cfg = cfg.withDefaults()
	switch {
	case cfg.Instance == "":
		return nil, errors.New("presence: Config.Instance is required")
	case d.Store == nil:
		return nil, errors.New("presence: Deps.Store is required")
	case d.Alive == nil:
		return nil, errors.New("presence: Deps.Alive is required")
	case d.Log == nil:
		return nil, errors.New("presence: Deps.Log is required")
	}
	m, err := newMetrics(d.Metrics)
	if err != nil {
		return nil, fmt.Errorf("presence: metrics: %w", err)
	}
	t := &Tracker{cfg: cfg, d: d, log: d.Log, m: m, counter: newCounter()}
	t.needReplace.Store(true)
	return t, nil
}

// Open counts one more connection of user in the session handle. No I/O:
// the change is written by the next flush.
func (t *Tracker) Open(user, handle string) {
	if user != "" {
		t.counter.add(user, handle, 1)
	}
}

// Close counts one connection of user in handle less.
func (t *Tracker) Close(user, handle string) {
	if user != "" {
		t.counter.add(user, handle, -1)
	}
}

// LocalUsers returns how many users hold a connection on this instance.
func (t *Tracker) LocalUsers() int { return t.counter.users() }

// goneAfter is how long an instance's records may go unrefreshed before
// they are purged.
func (t *Tracker) goneAfter() time.Duration {
	return time.Duration(t.cfg.MissedBeats) * t.cfg.Interval
}

// Run writes changes every FlushInterval and refreshes the records and
// purges gone instances every Interval, until ctx is done; then it writes
// what changed last (the caller closed the connections first) and removes
// this instance's records, within 2s.
func (t *Tracker) Run(ctx context.Context) {
	// A previous process with this id may have left records: its
	// connections are gone with it.
	t.purgeSelf(ctx)
	_ = t.Flush(ctx)
	t.refresh(ctx)
	flush := time.NewTicker(t.cfg.FlushInterval)
	defer flush.Stop()
	beat := time.NewTicker(t.cfg.Interval)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			defer cancel()
			_ = t.Flush(fctx)
			t.purgeSelf(fctx)
			return
		case <-flush.C:
			_ = t.Flush(ctx)
		case <-beat.C:
			t.refresh(ctx)
			t.purgeGone(ctx)
		}
	}
}

// Flush writes the users that changed since the last flush (everything,
// when the records were lost) and hands the transitions to Emit. After it
// returns nil, the store holds this instance's counts as of its start.
// Safe for concurrent use; flushes run one at a time.
func (t *Tracker) Flush(ctx context.Context) error {
	t.flushMu.Lock()
	defer t.flushMu.Unlock()
	replace := t.needReplace.Swap(false)
	changes := t.counter.takeDirty(replace)
	var (
		ts  []Transition
		err error
	)
	if replace || len(changes) > 0 {
		start := time.Now()
		if replace {
			ts, err = t.d.Store.Replace(ctx, t.cfg.Instance, changes)
		} else {
			ts, err = t.d.Store.Write(ctx, t.cfg.Instance, changes)
		}
		t.m.flushTime.Observe(time.Since(start).Seconds())
		t.flushResult(err, len(changes))
		if err != nil {
			if replace {
				t.needReplace.Store(true)
			}
			t.counter.failed(changes)
		} else {
			t.counter.written(changes, replace)
		}
	}
	t.emitLocked(ctx, ts)
	return err
}

// flushResult counts a flush and logs the first failure of an outage and
// the recovery.
func (t *Tracker) flushResult(err error, users int) {
	if err != nil {
		t.m.flushes.WithLabelValues("error").Inc()
		if !t.flushFailed {
			t.log.Warn("presence flush failed", zap.Int("users", users), zap.Error(err))
		}
		t.flushFailed = true
		return
	}
	t.m.flushes.WithLabelValues("ok").Inc()
	if t.flushFailed {
		t.log.Info("presence flush recovered", zap.Int("users", users))
		t.flushFailed = false
	}
}

// emitLocked hands ts, after what is still pending, to Emit. The caller
// holds flushMu.
func (t *Tracker) emitLocked(ctx context.Context, ts []Transition) {
	for _, tr := range ts {
		kind := "offline"
		if tr.Online {
			kind = "online"
		}
		t.m.transitions.WithLabelValues(kind).Inc()
	}
	if t.d.Emit == nil {
		return
	}
	t.pending = append(t.pending, ts...)
	if over := len(t.pending) - t.cfg.MaxPendingEvents; over > 0 {
		t.pending = slices.Delete(t.pending, 0, over)
		t.m.dropped.Add(float64(over))
		if !t.dropLogged {
			t.log.Error("presence events dropped", zap.Int("dropped", over))
			t.dropLogged = true
		}
	}
	if len(t.pending) == 0 {
		return
	}
	if err := t.d.Emit(ctx, t.pending); err != nil {
		// Kept for the next flush. Logged once per outage.
		if !t.emitFailed {
			t.log.Warn("presence events not queued", zap.Int("waiting", len(t.pending)), zap.Error(err))
		}
		t.emitFailed = true
		return
	}
	if t.emitFailed {
		t.log.Info("presence events queued again", zap.Int("queued", len(t.pending)))
		t.emitFailed, t.dropLogged = false, false
	}
	t.pending = t.pending[:0]
}

// refresh extends this instance's records; when they are gone (purged by
// an instance that thought this one dead, or expired), the next flush
// writes them all again.
func (t *Tracker) refresh(ctx context.Context) {
	ok, err := t.d.Store.Refresh(ctx, t.cfg.Instance)
	if err != nil {
		t.m.flushes.WithLabelValues("error").Inc()
		return
	}
	if !ok && !t.needReplace.Load() {
		t.m.rewrites.Inc()
		t.log.Warn("presence records lost", zap.String("peer", t.cfg.Instance))
		t.needReplace.Store(true)
		_ = t.Flush(ctx)
	}
}

// purgeGone purges the records of every instance that has not refreshed
// them for MissedBeats intervals and that the cluster view does not see
// alive.
func (t *Tracker) purgeGone(ctx context.Context) {
	stale, err := t.d.Store.Stale(ctx, t.goneAfter())
	if err != nil || len(stale) == 0 {
		return
	}
	alive := t.d.Alive()
	for _, id := range stale {
		if id == t.cfg.Instance || slices.Contains(alive, id) {
			continue
		}
		ts, err := t.d.Store.Purge(ctx, id)
		if err != nil {
			t.log.Warn("presence purge failed", zap.String("peer", id), zap.Error(err))
		} else {
			t.m.purges.Inc()
			t.log.Info("presence purged", zap.String("peer", id), zap.Int("users_offline", len(ts)))
		}
		t.flushMu.Lock()
		t.emitLocked(ctx, ts)
		t.flushMu.Unlock()
	}
}

// purgeSelf removes this instance's own records (at start: a previous
// process's; at stop: its own).
func (t *Tracker) purgeSelf(ctx context.Context) {
	t.flushMu.Lock()
	defer t.flushMu.Unlock()
	ts, err := t.d.Store.Purge(ctx, t.cfg.Instance)
	if err != nil {
		t.log.Warn("presence purge failed", zap.String("peer", t.cfg.Instance), zap.Error(err))
	}
	t.needReplace.Store(true)
	t.emitLocked(ctx, ts)
}

// aliveSet returns the alive instances, sorted.
func (t *Tracker) alive() []string {
	ids := slices.Clone(t.d.Alive())
	slices.Sort(ids)
	return ids
}

// User returns where userID is connected, on alive instances only. A user
// with no connection is returned with no instances.
func (t *Tracker) User(ctx context.Context, userID string) (User, error) {
	ps, err := t.d.Store.User(ctx, userID)
	if err != nil {
		return User{}, err
	}
	alive := t.alive()
	out := User{UserID: userID}
	for _, p := range ps {
		if _, ok := slices.BinarySearch(alive, p.Instance); ok && p.Conns > 0 {
			out.Instances = append(out.Instances, p)
		}
	}
	return out, nil
}

// Page returns up to limit (1..[MaxPageSize]) online users after cursor
// ("" starts) and the cursor of the next page ("" at the end). Errors wrap
// [ErrBadLimit] or [ErrBadCursor] for bad input.
func (t *Tracker) Page(ctx context.Context, cursor string, limit int) ([]User, string, error) {
	if limit < 1 || limit > MaxPageSize {
		return nil, "", fmt.Errorf("%w: %d (1..%d)", ErrBadLimit, limit, MaxPageSize)
	}
	after, err := DecodeCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	users, next, err := t.d.Store.Page(ctx, t.alive(), after, limit)
	if err != nil {
		return nil, "", err
	}
	return users, EncodeCursor(next), nil
}
