package revocation

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/internal/backoff"
	"github.com/sessiongate/sessiongate/session"
)

// Revoker revokes sessions and keeps revocations true across instances and
// faults (see the package doc). Build it with [New] and run its background
// work with [Revoker.Run]. Every method is safe for concurrent use.
type Revoker struct {
	cfg   Config
	store Store
	bus   Publisher
	conns Conns
	log   *zap.Logger
	now   func() time.Time
	m     *metrics
	tomb  *tombstones
	// logins are the sessions created here that auditLogins still checks.
	logins *logins
	retry  backoff.Policy
	// reconciled is Deps.Reconciled; nil for none.
	reconciled func()
	// forget is Deps.Forget, never nil.
	forget func(handles []string, all bool)

	reconcileC chan string   // reasons for a pass soon; folds while one is pending
	retryC     chan struct{} // retry the queued revocations now
	queuedC    chan struct{} // a revocation was queued

	mu      sync.Mutex
	pending map[string]*pendingRevocation // by key (see pendingRevocation.key)
	order   []*pendingRevocation          // FIFO
	// queued is len(pending), kept for the handshake path: with nothing
	// queued (the common case) UserPending answers without the mutex.
	queued atomic.Int64

	// Owned by the reconcile loop.
	generation string // the store's data set as last seen; "" before the first pass
	failures   int    // consecutive failed passes
}

// New builds a Revoker. It starts no goroutines and does no I/O.
func New(cfg Config, d Deps) (*Revoker, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if d.Store == nil || d.Bus == nil || d.Conns == nil || d.Log == nil {
		return nil, fmt.Errorf("%w: Deps.Store, Bus, Conns and Log are required", ErrInvalidConfig)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	m, err := newMetrics(d.Metrics)
	if err != nil {
		return nil, err
	}
	r := &Revoker{
		cfg:        cfg,
		store:      d.Store,
		bus:        d.Bus,
		conns:      d.Conns,
		log:        d.Log,
		now:        d.Now,
		m:          m,
		tomb:       newTombstones(cfg.TombstoneTTL, cfg.MaxTombstones),
		logins:     newLogins(cfg.TombstoneTTL, cfg.MaxTombstones),
		retry:      backoff.Policy{Min: cfg.RetryMin, Max: cfg.RetryMax, Jitter: 0.2},
		reconciled: d.Reconciled,
		forget:     d.Forget,
		reconcileC: make(chan string, 1),
		retryC:     make(chan struct{}, 1),
		queuedC:    make(chan struct{}, 1),
		pending:    make(map[string]*pendingRevocation),
	}
	if r.forget == nil {
		r.forget = func([]string, bool) {}
	}
	return r, nil
}

// Run runs the reconciler (on every [Revoker.Trigger] and every sweep
// interval) and the retry loop of queued revocations until ctx is done,
// then returns after both have stopped. Call it once.
func (r *Revoker) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		r.reconcileLoop(ctx)
	}()
	go func() {
		defer wg.Done()
		r.retryLoop(ctx)
	}()
	wg.Wait()
}

// Trigger asks for a reconcile pass soon and wakes the queued revocations:
// the caller saw a reason to doubt what pub/sub delivered (a resubscribe, a
// missing own heartbeat, a failed publish) or a sign Redis is back. It
// never blocks; triggers that arrive while one is pending fold into it.
func (r *Revoker) Trigger(reason string) {
	select {
	case r.reconcileC <- reason:
	default:
	}
	r.wakeRetry()
}

func (r *Revoker) wakeRetry() {
	select {
	case r.retryC <- struct{}{}:
	default:
	}
}

// Created tells the Revoker of a session this instance just created (a
// login). Until a store failover can no longer undo it, every reconcile
// pass checks that the session is in its user's index: on Redis Cluster
// the index is in another slot than the session, and a failover that
// loses the index entry but not the session would leave a session that
// revoking its user cannot find. Such a session is revoked (see
// [Revoker.auditLogins]). It never blocks on I/O.
func (r *Revoker) Created(userID, handle string) {
	r.logins.add(session.IndexRef{UserID: userID, Handle: handle}, r.now())
}

// Pending returns the number of revocations accepted but not yet confirmed.
func (r *Revoker) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}
