package connmgr

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// Accepting reports whether the manager still takes connections; it turns
// false once [Manager.Shutdown] begins, so the gateway can answer 503 before
// upgrading.
func (m *Manager) Accepting() bool {
	return !m.draining.Load()
}

// Shutdown drains the manager: it stops accepting, closes every connection
// with [CodeGoingAway] spread evenly over DrainWindow (or over three quarters
// of the time left before ctx's deadline, if that is shorter), waits for every
// Serve and every goroutine the manager started to return, and stops
// [Manager.Run]. If ctx ends first, the remaining closes are sent at once and
// ctx's error is returned; the close handshakes still end by themselves within
// coder/websocket's bounds. Concurrent and repeated calls all wait.
func (m *Manager) Shutdown(ctx context.Context) error {
	if m.draining.CompareAndSwap(false, true) {
		m.drain(ctx)
	}
	err := m.work.wait(ctx)
	m.stopOnce.Do(func() { close(m.stop) })
	if err != nil {
		return err
	}
	m.closePoller() // every connection has ended
	return m.runs.wait(ctx)
}

func (m *Manager) drain(ctx context.Context) {
	var conns []*conn
	for i := range m.reg.shards {
		conns = m.reg.snapshotShard(i, conns)
	}
	n := len(conns)
	if n == 0 {
		return
	}
	start := m.clock.Now()
	window := m.cfg.DrainWindow
	if dl, ok := ctx.Deadline(); ok {
		if rest := dl.Sub(start) * 3 / 4; rest < window {
			window = max(rest, 0)
		}
	}
	m.log.Info("draining connections", zap.Int("connections", n), zap.Duration("window", window))

	due := make(chan struct{}, 1)
	hurry := false
	for i, c := range conns {
		if c.isClosing() {
			continue // closed meanwhile: no slot to wait for
		}
		if !hurry {
			at := start.Add(window * time.Duration(i) / time.Duration(n))
			if d := at.Sub(m.clock.Now()); d > 0 {
				t := m.clock.AfterFunc(d, func() { due <- struct{}{} })
				select {
				case <-due:
				case <-ctx.Done():
					t.Stop()
					hurry = true
				}
			}
		}
		m.closeConn(c, CodeGoingAway, false)
	}
}

// DrainWindow is the span [Manager.Shutdown] spreads its closes over, with
// the default applied.
func (m *Manager) DrainWindow() time.Duration { return m.cfg.DrainWindow }
