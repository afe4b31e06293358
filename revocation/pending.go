package revocation

import (
	"context"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/internal/logfield"
)

// kind is what a pending revocation revokes.
type kind string

const (
	kindSession kind = "session"
	kindUser    kind = "user"
)

// pendingRevocation is a revocation the store or the bus has not confirmed
// yet. Once queued, its fields are the retry loop's, except again, which is
// guarded by Revoker.mu.
type pendingRevocation struct {
	kind   kind
	id     string // the handle (session) or the user id (user)
	reason string
	queued time.Time

	destroyed bool     // the store delete is confirmed
	existed   bool     // session: the store had it
	handles   []string // user: destroyed handles whose events are still owed
	published int      // user: handles[:published] are announced
	sessions  int      // user: sessions destroyed, over every attempt
	attempts  int

	// again: another revocation of the same key arrived while this one
	// was queued; the delete runs again (a user may have new sessions).
	again bool
	// owed (user): handles that revocations folded into this one
	// destroyed but did not announce; the store no longer has them, so
	// the next delete cannot find them again. Guarded by Revoker.mu.
	owed []string
}

func (p *pendingRevocation) key() string { return string(p.kind) + ":" + p.id }

// idField logs what p revokes.
func (p *pendingRevocation) idField() zap.Field {
	if p.kind == kindSession {
		return logfield.Handle(p.id)
	}
	return zap.String("user_id", p.id)
}

// enqueue queues p after its first try failed with err. For a session, p
// takes over the caller's tombstone hold. A revocation of a key already
// queued folds into the queued one.
func (r *Revoker) enqueue(p *pendingRevocation, err error) {
	r.mu.Lock()
	cur, merged := r.pending[p.key()]
	if merged {
		cur.again = true
		if p.kind == kindUser {
			cur.owed = append(cur.owed, p.handles[p.published:]...)
		}
	} else {
		p.queued = r.now()
		r.pending[p.key()] = p
		r.order = append(r.order, p)
		r.queued.Store(int64(len(r.pending)))
		r.m.pending.Set(float64(len(r.pending)))
	}
	r.mu.Unlock()
	if merged && p.kind == kindSession {
		r.tomb.release(p.id, r.now()) // the queued one holds its own
	}
	r.log.Warn("revocation queued", zap.String("kind", string(p.kind)), p.idField(), zap.String("reason", p.reason),
		zap.Bool("merged", merged), zap.Error(err))
	select {
	case r.queuedC <- struct{}{}:
	default:
	}
}

// retryLoop retries the queued revocations: first RetryMin after one is
// queued, then with backoff while they keep failing, and at once when
// [Revoker.Trigger] reports a sign of recovery.
func (r *Revoker) retryLoop(ctx context.Context) {
	attempt := 0
	var timer *time.Timer
	var timerC <-chan time.Time
	arm := func(d time.Duration) {
		if timer != nil {
			timer.Stop()
		}
		timer = time.NewTimer(d)
		timerC = timer.C
	}
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			if n := r.Pending(); n > 0 {
				r.log.Error("revocations abandoned", zap.Int("pending", n))
			}
			return
		case <-r.queuedC:
			if timerC == nil {
				arm(r.retry.Delay(1))
			}
			continue
		case <-r.retryC:
		case <-timerC:
		}
		timerC = nil
		if r.retryPending(ctx) {
			attempt = 0
			continue
		}
		attempt++
		arm(r.retry.Delay(attempt))
	}
}

// retryPending retries every queued revocation, oldest first, stopping at
// the first failure (the store or the bus is still down). It reports
// whether the queue is empty.
func (r *Revoker) retryPending(ctx context.Context) bool {
	for ctx.Err() == nil {
		r.mu.Lock()
		batch := slices.Clone(r.order)
		r.mu.Unlock()
		if len(batch) == 0 {
			return true
		}
		for _, p := range batch {
			if err := r.attempt(ctx, p); err != nil {
				r.log.Debug("revocation retry failed", zap.String("kind", string(p.kind)), p.idField(),
					zap.Int("attempts", p.attempts), zap.Error(err))
				return false
			}
		}
	}
	return false
}

// attempt runs what p still owes: the store delete, then the events. The
// events are sent after the delete even if the first try sent them: a
// tombstone on another instance may have expired since, and a reconnect
// there may have read the session before the delete.
func (r *Revoker) attempt(ctx context.Context, p *pendingRevocation) error {
	p.attempts++
	r.mu.Lock()
	if p.again {
		p.again = false
		p.destroyed = false
	}
	if len(p.owed) > 0 {
		p.handles = append(slices.Clip(p.handles[p.published:]), p.owed...)
		p.published = 0
		p.owed = nil
	}
	r.mu.Unlock()
	if !p.destroyed {
		switch p.kind {
		case kindSession:
			existed, err := r.destroy(ctx, p.id)
			if err != nil {
				return err
			}
			p.existed = p.existed || existed
		case kindUser:
			hs, err := r.destroyUser(ctx, p.id)
			if err != nil {
				return err
			}
			r.closeHandles(hs)
			p.handles = append(slices.Clip(p.handles[p.published:]), hs...)
			p.published = 0
			p.sessions += len(hs)
		}
		r.mu.Lock()
		p.destroyed = true
		r.mu.Unlock()
	}
	switch p.kind {
	case kindSession:
		if err := r.publish(ctx, r.sessionEvent(p.id)); err != nil {
			return err
		}
	case kindUser:
		if err := r.publishUser(ctx, p); err != nil {
			return err
		}
	}
	r.mu.Lock()
	if p.again {
		r.mu.Unlock()
		return nil // folded in meanwhile: the next round goes again
	}
	delete(r.pending, p.key())
	r.order = slices.DeleteFunc(r.order, func(q *pendingRevocation) bool { return q == p })
	r.queued.Store(int64(len(r.pending)))
	r.m.pending.Set(float64(len(r.pending)))
	r.mu.Unlock()
	fields := []zap.Field{zap.String("kind", string(p.kind)), p.idField(), zap.String("reason", p.reason),
		zap.Duration("pending_for", r.now().Sub(p.queued)), zap.Int("attempts", p.attempts)}
	if p.kind == kindSession {
		r.tomb.release(p.id, r.now())
		fields = append(fields, zap.Bool("existed", p.existed))
	} else {
		fields = append(fields, zap.Int("sessions", p.sessions))
	}
	r.log.Info("revocation confirmed", fields...)
	return nil
}
