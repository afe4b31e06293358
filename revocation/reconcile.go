package revocation

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/connmgr"
	"github.com/sessiongate/sessiongate/internal/logfield"
)

// reconcileLoop runs a pass on every trigger and every sweep interval, and
// retries a failed pass with backoff. Pub/sub is lossy; this loop is what
// guarantees that a revoked session is never connected past one sweep
// interval, whatever happened to pub/sub.
func (r *Revoker) reconcileLoop(ctx context.Context) {
	sweep := time.NewTicker(r.cfg.SweepInterval)
	defer sweep.Stop()
	var retry *time.Timer
	var retryC <-chan time.Time
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	for {
		var reason string
		select {
		case <-ctx.Done():
			return
		case <-sweep.C:
			reason = "sweep"
		case reason = <-r.reconcileC:
		case <-retryC:
			reason = "retry"
		}
		if retry != nil {
			retry.Stop()
			retry, retryC = nil, nil
		}
		ok, delay := r.reconcile(ctx, reason)
		if !ok {
			retry = time.NewTimer(delay)
			retryC = retry.C
			continue
		}
		if r.reconciled != nil {
			r.reconciled()
		}
	}
}

// reconcile checks, in pipelined batches, that every session this instance
// holds connections for still exists, and closes the connections of those
// that do not: 4501 when their lifetime has passed, 4504 when the store's
// data set was replaced (every session lost, not revoked), 4500 otherwise.
// Gone sessions are tombstoned first (unless lost in a reset), as a
// revocation event would have.
// The periodic sweep also extends the idle TTL of sessions with live
// connections: an open connection is activity. On failure it returns the
// delay before the next try.
func (r *Revoker) reconcile(ctx context.Context, reason string) (bool, time.Duration) {
	start := time.Now()
	before, err := r.readGeneration(ctx)
	if err != nil {
		return false, r.failed(reason, err)
	}
	refs := r.conns.Sessions()
	touch := reason == "sweep"
	reset := r.generation != "" && before != r.generation
	var closedSessions, closedConns, lostSessions, lostConns int
	forgotAll := false
	for i := 0; i < len(refs); i += r.cfg.ReconcileBatch {
		batch := refs[i:min(i+r.cfg.ReconcileBatch, len(refs))]
		handles := make([]string, len(batch))
		for j, ref := range batch {
			handles[j] = ref.Handle
		}
		cctx, cancel := context.WithTimeout(ctx, r.cfg.StoreTimeout)
		exists, err := r.store.Exists(cctx, handles, touch)
		cancel()
		if err != nil {
			return false, r.failed(reason, err)
		}
		if !reset && i == 0 {
			// A data set lost between the first read and this check
			// must not pass for a wave of revocations.
			after, err := r.readGeneration(ctx)
			if err != nil {
				return false, r.failed(reason, err)
			}
			reset = after != before
			before = after
		}
		// Caches forget first: a closed client reconnects at once.
		if reset && !forgotAll {
			r.forget(nil, true)
			forgotAll = true
		}
		var gone []string
		for j, ok := range exists {
			if !ok {
				gone = append(gone, batch[j].Handle)
			}
		}
		if len(gone) > 0 {
			if !reset {
				// Tombstoned before the caches forget and the close: a
				// handshake that found the session (cached, or read before
				// the delete) and registers after this pass closed its
				// connections is closed by CloseIfRevokedMeanwhile, as after
				// a revocation event; the next handshake is refused without
				// a store read. A reset's sessions were lost, not revoked.
				now := r.now()
				for _, h := range gone {
					r.tomb.add(h, now)
				}
			}
			r.forget(gone, false)
		}
		for j, ok := range exists {
			if ok {
				continue
			}
			code := r.closeCodeFor(batch[j].ExpiresAt, reset)
			if n := r.conns.CloseSession(batch[j].Handle, code); n > 0 {
				closedSessions++
				closedConns += n
				if code == connmgr.CodeSessionLost {
					lostSessions++
					lostConns += n
				}
			}
		}
	}
	if reset && !forgotAll {
		r.forget(nil, true) // a reset with no connection here to check
	}
	undone, err := r.recheckRevoked(ctx)
	if err != nil {
		return false, r.failed(reason, err)
	}
	unindexed, err := r.auditLogins(ctx)
	if err != nil {
		return false, r.failed(reason, err)
	}
	r.generation = before
	if r.failures > 0 {
		r.log.Info("reconcile recovered", zap.Int("failed_passes", r.failures))
		r.failures = 0
	}
	r.m.reconciles.Inc()
	r.m.reconcileClosed.Add(float64(closedConns))
	if reset {
		r.m.storeResets.Inc()
		r.log.Error("session store reset", zap.String("reason", reason), zap.Int("sessions_lost", lostSessions),
			zap.Int("connections_closed", lostConns))
	}
	lvl := r.log.Debug
	if closedConns > 0 || undone > 0 || unindexed > 0 || (reason != "sweep" && len(refs) > 0) {
		lvl = r.log.Info
	}
	lvl("reconciled", zap.String("reason", reason), zap.Int("sessions_checked", len(refs)),
		zap.Int("sessions_closed", closedSessions), zap.Int("connections_closed", closedConns),
		zap.Int("revocations_undone", undone), zap.Int("sessions_unindexed", unindexed), zap.Duration("duration", time.Since(start)))
	return true, 0
}

// recheckRevoked checks that the sessions this instance holds tombstones
// for are still gone from the store, and revokes again any that is back.
// A delete the store acknowledged can be undone: Redis replicates
// asynchronously, so a master that fails (or is cut off and demoted)
// before its replica got the delete leaves the replica, now the master,
// with the session. The tombstone keeps refusing its handshakes here
// meanwhile; the second revocation deletes it on the new master and tells
// every instance, including those whose event was lost in the failover.
// Tombstones younger than StoreTimeout are left to the revocation that
// set them, whose delete may still be in flight. It returns how many
// sessions it revoked again.
func (r *Revoker) recheckRevoked(ctx context.Context) (int, error) {
	handles := r.tomb.settled(r.now(), r.cfg.StoreTimeout)
	undone := 0
	for i := 0; i < len(handles); i += r.cfg.ReconcileBatch {
		batch := handles[i:min(i+r.cfg.ReconcileBatch, len(handles))]
		cctx, cancel := context.WithTimeout(ctx, r.cfg.StoreTimeout)
		exists, err := r.store.Exists(cctx, batch, false)
		cancel()
		if err != nil {
			return undone, err
		}
		for j, ok := range exists {
			if !ok {
				continue
			}
			undone++
			r.m.undone.Inc()
			r.log.Warn("revocation undone", logfield.Handle(batch[j]))
			r.RevokeSession(ctx, batch[j], "revocation undone by the store")
		}
	}
	return undone, nil
}

// auditLogins checks that the sessions this instance created recently
// are in their user's index, and revokes any that is not while it still
// exists. On Redis Cluster a session key and its user's index are in
// different slots, on different masters: a master that fails before its
// replica got a login's index write (SADD) loses the entry while the
// session key, on another master, survives. Revoking that user would read
// the index, miss the session and confirm; the session would stay valid.
// So such a login is lost whole, as one whose session key the failover
// lost: revoked here (4500 everywhere) within a pass of the failover.
// A session that is gone from the store is no longer checked; one still
// indexed is checked until its login is older than TombstoneTTL, the same
// bound as a revocation's (a failover that completes within it is
// caught). Logins younger than StoreTimeout are left alone: their index
// write may still be in flight. It returns how many sessions it revoked.
func (r *Revoker) auditLogins(ctx context.Context) (int, error) {
	refs := r.logins.due(r.now(), r.cfg.StoreTimeout)
	lost := 0
	var over []string
	defer func() { r.logins.forget(over) }()
	for i := 0; i < len(refs); i += r.cfg.ReconcileBatch {
		batch := refs[i:min(i+r.cfg.ReconcileBatch, len(refs))]
		cctx, cancel := context.WithTimeout(ctx, r.cfg.StoreTimeout)
		indexed, err := r.store.Indexed(cctx, batch)
		cancel()
		if err != nil {
			return lost, err
		}
		var missing []string
		for j, ok := range indexed {
			if !ok {
				missing = append(missing, batch[j].Handle)
			}
		}
		if len(missing) == 0 {
			continue
		}
		cctx, cancel = context.WithTimeout(ctx, r.cfg.StoreTimeout)
		exists, err := r.store.Exists(cctx, missing, false)
		cancel()
		if err != nil {
			return lost, err
		}
		for j, ok := range exists {
			over = append(over, missing[j])
			if !ok {
				continue // logged out, revoked or expired: nothing left to find
			}
			lost++
			r.m.unindexed.Inc()
			r.log.Warn("session unindexed", logfield.Handle(missing[j]))
			r.RevokeSession(ctx, missing[j], "its user index entry was lost by the store")
		}
	}
	return lost, nil
}

func (r *Revoker) readGeneration(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.StoreTimeout)
	defer cancel()
	return r.store.Generation(ctx)
}

// failed records a failed pass and returns the delay before the next one.
// An outage is one warning, not one per pass.
func (r *Revoker) failed(reason string, err error) time.Duration {
	r.m.reconcileErrors.Inc()
	r.failures++
	delay := r.retry.Delay(r.failures)
	lvl := r.log.Debug
	if r.failures == 1 {
		lvl = r.log.Warn
	}
	lvl("reconcile failed", zap.String("reason", reason),
		zap.Int("failures", r.failures), zap.Duration("retry_in", delay), zap.Error(err))
	return delay
}

// closeCodeFor is the close code for a session that is gone.
func (r *Revoker) closeCodeFor(expiresAt time.Time, reset bool) connmgr.CloseCode {
	switch {
	case !expiresAt.IsZero() && !r.now().Before(expiresAt):
		return connmgr.CodeExpired
	case reset:
		return connmgr.CodeSessionLost
	}
	return connmgr.CodeRevoked
}
