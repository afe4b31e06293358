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
//
// The walk is spread over the tick, a few shards at a time (see
// [sweepPlan]): walking every shard at once sent a whole tick's pings in
// one burst (480 for 12,000 connections at a 25 s interval, about 20 ms
// of one core with the pongs), and any event or revocation that arrived
// meanwhile waited behind it.
func (m *Manager) Run(ctx context.Context) {
	m.runs.add()
	defer m.runs.done()
	step, per := sweepPlan(m.cfg.tick(), len(m.reg.shards))
	t := time.NewTicker(step)
	defer t.Stop()
	var sw sweeper
	next := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.stop:
			return
		case <-t.C:
			end := min(next+per, len(m.reg.shards))
			m.sweep(&sw, next, end)
			next = end % len(m.reg.shards)
		}
	}
}

// sweepPlan spreads a walk of shards shards over one tick: every step it
// walks per shards, so that every shard is walked at least once a tick.
// A step is at least a millisecond.
func sweepPlan(tick time.Duration, shards int) (step time.Duration, per int) {
	steps := max(min(shards, int(tick/time.Millisecond)), 1)
	per = (shards + steps - 1) / steps
	rounds := (shards + per - 1) / per // steps a walk of every shard takes
	return tick / time.Duration(rounds), per
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

// sweep walks shards [from, to).
func (m *Manager) sweep(sw *sweeper, from, to int) {
	now := m.now()
	wall := m.clock.Now()
	interval := int64(m.cfg.PingInterval)
	deadline := int64(m.cfg.PingInterval + m.cfg.PongTimeout)
	for i := from; i < to; i++ {
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
