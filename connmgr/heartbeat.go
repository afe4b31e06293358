package connmgr

import (
	"context"
	"time"
)

// Run is the manager's one heartbeat loop. Every tick (min(1s,
// PingInterval/16)) it walks the shards and queues a ping on the connections
// whose ping is due, closes with [CodeHeartbeatTimeout] those silent for
// PingInterval+PongTimeout, and closes with [CodeExpired] those whose
// [Info.ExpiresAt] has passed. It returns when ctx is done or after
// [Manager.Shutdown]. Call it once, in its own goroutine.
func (m *Manager) Run(ctx context.Context) {
	m.runs.add()
	defer m.runs.done()
	t := time.NewTicker(m.cfg.tick())
	defer t.Stop()
	var sw sweeper
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.stop:
			return
		case <-t.C:
			m.sweep(&sw)
		}
	}
}

// sweeper holds buffers reused across ticks by the one Run goroutine.
type sweeper struct {
	pings  []*conn
	closes []pendingClose
}

type pendingClose struct {
	c    *conn
	code CloseCode
}

func (m *Manager) sweep(sw *sweeper) {
	now := m.now()
	wall := m.clock.Now()
	interval := int64(m.cfg.PingInterval)
	deadline := int64(m.cfg.PingInterval + m.cfg.PongTimeout)
	for i := range m.reg.shards {
		s := &m.reg.shards[i]
		sw.pings, sw.closes = sw.pings[:0], sw.closes[:0]
		s.mu.RLock()
		for _, c := range s.byID {
			switch {
			case !c.info.ExpiresAt.IsZero() && !wall.Before(c.info.ExpiresAt):
				sw.closes = append(sw.closes, pendingClose{c, CodeExpired})
			case now-c.lastSeen.Load() > deadline:
				sw.closes = append(sw.closes, pendingClose{c, CodeHeartbeatTimeout})
			case now >= c.nextPing.Load():
				next := c.nextPing.Load() + interval
				if next <= now {
					next = now + interval
				}
				c.nextPing.Store(next)
				sw.pings = append(sw.pings, c)
			}
		}
		s.mu.RUnlock()
		for _, c := range sw.pings {
			m.enqueue(c, m.ping)
		}
		for _, pc := range sw.closes {
			m.closeConn(pc.c, pc.code, false)
		}
	}
	clear(sw.pings)
	clear(sw.closes)
}
