package gateway

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// reconcileBatch bounds one pipelined existence check.
const reconcileBatch = 5000

// requestReconcile asks the reconciler for a pass soon. It never blocks:
// requests that arrive while one is pending fold into it.
func (s *Server) requestReconcile(reason string) {
	select {
	case s.reconcileC <- reason:
	default:
	}
}

// reconcileLoop runs a pass on every request and on every sweep interval.
// Pub/sub is lossy; this loop is what guarantees that a revoked session is
// never connected past one sweep interval, whatever happened to pub/sub.
func (s *Server) reconcileLoop(ctx context.Context) {
	interval := s.cfg.ReconcileInterval
	if interval <= 0 {
		interval = 30 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		var reason string
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			reason = "sweep"
		case reason = <-s.reconcileC:
		}
		s.reconcile(ctx, reason)
	}
}

// reconcile checks, in pipelined batches, that every session this instance
// holds connections for still exists, and closes the connections of those
// that do not (4501 when their lifetime has passed, 4500 otherwise). The
// periodic sweep also extends the idle TTL of sessions with live connections:
// an open connection is activity.
func (s *Server) reconcile(ctx context.Context, reason string) {
	refs := s.conns.Sessions()
	if len(refs) == 0 {
		return
	}
	touch := reason == "sweep"
	start := time.Now()
	closedSessions, closedConns := 0, 0
	for i := 0; i < len(refs); i += reconcileBatch {
		batch := refs[i:min(i+reconcileBatch, len(refs))]
		handles := make([]string, len(batch))
		for j, r := range batch {
			handles[j] = r.Handle
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		exists, err := s.d.Store.Exists(cctx, handles, touch)
		cancel()
		if err != nil {
			s.metrics.reconcileErrors.Inc()
			s.reconcileFailures++
			delay := s.retryDelay()
			lvl := s.log.Debug
			if s.reconcileFailures == 1 {
				lvl = s.log.Warn
			}
			lvl("reconcile: session check failed; will retry", zap.String("reason", reason),
				zap.Int("failures", s.reconcileFailures), zap.Duration("retry_in", delay), zap.Error(err))
			s.retryReconcileLater(ctx, delay)
			return
		}
		for j, ok := range exists {
			if ok {
				continue
			}
			code := s.closeCodeFor(batch[j].ExpiresAt)
			if n := s.conns.CloseSession(batch[j].Handle, code); n > 0 {
				closedSessions++
				closedConns += n
			}
		}
	}
	if s.reconcileFailures > 0 {
		s.log.Info("reconcile: session checks work again", zap.Int("failed_passes", s.reconcileFailures))
		s.reconcileFailures = 0
	}
	s.metrics.reconciles.Inc()
	s.metrics.reconcileClosed.Add(float64(closedConns))
	lvl := s.log.Debug
	if closedConns > 0 || reason != "sweep" {
		lvl = s.log.Info
	}
	lvl("reconciled", zap.String("reason", reason), zap.Int("sessions_checked", len(refs)),
		zap.Int("sessions_closed", closedSessions), zap.Int("connections_closed", closedConns),
		zap.Duration("duration", time.Since(start)))
}

// retryDelay spaces retries during an outage: 1s, doubling, at most the
// sweep interval.
func (s *Server) retryDelay() time.Duration {
	d := time.Second << min(s.reconcileFailures-1, 10)
	if iv := s.cfg.ReconcileInterval; iv > 0 && d > iv {
		d = iv
	}
	return d
}

// retryReconcileLater schedules another pass after delay, so a reconcile
// that failed during an outage runs again soon after recovery rather than
// only at the next sweep.
func (s *Server) retryReconcileLater(ctx context.Context, delay time.Duration) {
	s.goFn(func() {
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
			s.requestReconcile("retry")
		}
	})
}
