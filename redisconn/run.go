package redisconn

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Run watches the connection until ctx ends or [Manager.Close] is called:
// it PINGs every Config.CheckInterval while connected; after a failure it
// retries with exponential backoff (StateReconnecting, one WARN line per
// attempt with attempt n/N and backoff), reports StateDown once after
// Config.ConnectAttempts failures and then probes every Config.BackoffMax
// quietly; when Redis answers again it logs one "redis recovered" line with
// the outage duration. The client itself is never replaced: go-redis
// re-dials on its own and Run only observes. Run blocks; call it once.
func (m *Manager) Run(ctx context.Context) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.wg.Add(1)
	m.mu.Unlock()
	defer m.wg.Done()

	var (
		failures    int
		outageStart time.Time
		delay       time.Duration // first check at once
	)
	if st := m.State(); st == StateDown || st == StateReconnecting {
		m.mu.Lock()
		outageStart = m.since
		m.mu.Unlock()
		failures = m.cfg.ConnectAttempts
	}
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.closing:
			return
		case <-timer.C:
		}
		start := time.Now()
		err := m.ping(ctx, m.cfg.DialTimeout)
		if ctx.Err() != nil || m.isClosed() {
			return
		}
		if err == nil {
			m.rtt.Store(int64(time.Since(start)))
			m.onCheckOK(failures, outageStart)
			failures = 0
			timer.Reset(m.cfg.CheckInterval)
			continue
		}
		if failures == 0 {
			outageStart = time.Now()
		}
		failures++
		timer.Reset(m.onCheckFailed(failures, outageStart, m.redactErr(err)))
	}
}

// onCheckOK logs and records a successful check.
func (m *Manager) onCheckOK(failures int, outageStart time.Time) {
	switch m.State() {
	case StateConnected:
		return
	case StateConnecting:
		m.log.Info("redis connected")
	default:
		m.log.Info("redis recovered",
			zap.Duration("outage", time.Since(outageStart).Round(time.Millisecond)),
			zap.Int("failed_checks", failures))
	}
	m.transition(StateConnected, "")
}

// onCheckFailed logs and records the failures-th consecutive failed check
// and returns the delay before the next one.
func (m *Manager) onCheckFailed(failures int, outageStart time.Time, msg string) time.Duration {
	n := m.cfg.ConnectAttempts
	switch {
	case failures < n:
		d := m.retryDelay(failures)
		m.log.Warn("redis reconnecting",
			zap.String("attempt", fmt.Sprintf("%d/%d", failures, n)),
			zap.Duration("backoff", d), zap.String("error", msg))
		m.transition(StateReconnecting, msg)
		return d
	case m.State() != StateDown:
		m.log.Error("redis down",
			zap.String("attempt", fmt.Sprintf("%d/%d", failures, n)),
			zap.Duration("outage", time.Since(outageStart).Round(time.Millisecond)),
			zap.Duration("probe_interval", m.cfg.BackoffMax), zap.String("error", msg))
		m.transition(StateDown, msg)
	default:
		m.log.Debug("redis still down", zap.Int("failed_checks", failures), zap.String("error", msg))
		m.setLastErr(msg)
	}
	return m.cfg.BackoffMax
}
