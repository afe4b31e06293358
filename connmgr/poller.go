package connmgr

import "go.uber.org/zap"

// An idle upgraded connection holds no goroutine. Its goroutine would be
// most of what the connection costs: a 2 KiB stack and a 0.5 KiB
// descriptor, against about 5 KiB for everything else it holds. Instead,
// between messages the connection waits in the manager's poller (an epoll
// instance on Linux, itself waited on through the Go runtime's netpoller,
// so it parks no thread either), armed for one wake-up. When its socket has
// input, an end or an error, the poller starts a short-lived goroutine
// (wake) that does what the read loop of a goroutine per connection does
// (take a pong, or read and handle a message) until the socket has nothing
// more, then arms the connection again and ends.
//
// Who owns the read side is the connection's state, changed only by
// compare-and-swap:
//
//	readRunning: a goroutine reads (wake, or the upgrade that made it);
//	readParked:  armed in the poller, no goroutine; the poller's wake-up
//	             (parked → running) or the socket's close (parked → ended)
//	             takes it, whichever comes first;
//	readEnded:   the connection's end is running or ran.
//
// The socket's close (idleConn.Close: the close handshake's end, its
// timeout, CloseNow) takes a parked connection to its end itself: a closed
// descriptor leaves the epoll set without a wake-up.
//
// Where there is no poller (not Linux, or epoll could not be made) or no raw
// socket, the connection keeps a goroutine as before (Manager.run).

const (
	readRunning int32 = iota
	readParked
	readEnded
)

// startReading hands c's read side to the poller, or to a goroutine of its
// own where there is none. The caller holds one count of m.work for it,
// released when the connection ends.
func (m *Manager) startReading(c *conn, stop func() bool) {
	if p := m.poller(); p != nil && c.idle.raw != nil {
		stop() // an upgraded connection has no context to watch
		c.idle.owner, c.idle.poll, c.idle.fd = c, p, -1
		// Nothing the handshake's buffer carried over: park at once
		// (level-triggered, so input already in the socket wakes it).
		if !c.idle.primed {
			if parked, _ := p.park(c.idle); parked {
				return
			}
		}
		go m.wake(c) // it retries the park, and reports a refusal
		return
	}
	go func() {
		defer m.work.done()
		m.run(c, stop)
	}()
}

// wake reads and handles c's client messages while its socket has input,
// then parks c in the poller, or ends it. It runs with c's state at
// readRunning, on a goroutine of its own.
func (m *Manager) wake(c *conn) {
	for {
		code, done, empty := m.inputStep(c, false)
		switch {
		case done:
			m.endReading(c, code)
			return
		case !empty:
			continue
		}
		parked, err := c.idle.poll.park(c.idle)
		switch {
		case parked:
			return
		case err != nil:
			m.log.Warn("poller refused a connection: it reads on a goroutine of its own", zap.String("conn_id", c.info.ID), zap.Error(err))
			m.endReading(c, m.idleReadLoop(c))
			return
		}
		// The socket is closed (and its close found c running): the next
		// step reports it.
	}
}

// endReading ends c from its read side: it closes c with code (unless a
// close runs already), waits for the close to finish and releases c's
// count of m.work. It runs once per connection.
func (m *Manager) endReading(c *conn, code CloseCode) {
	c.idle.state.Store(readEnded)
	c.idle.poll.forget(c.idle)
	m.closeConn(c, code, true)
	m.waitClosed(c)
	m.work.done()
}

// socketClosed is called by idleConn.Close after the socket is closed: a
// parked connection is ended here, since the poller will not wake it.
func (c *idleConn) socketClosed() {
	// The fields are read only after the swap succeeds: it orders them
	// after the park that set readParked (and they were set before).
	if !c.state.CompareAndSwap(readParked, readEnded) {
		return
	}
	m := c.poll.m
	go func() {
		code := CodeAbnormal
		if c.owner.isClosing() {
			code = CodeNormal
		}
		m.endReading(c.owner, code)
	}()
}

// poller returns m's poller, made on first use; nil where there is none.
func (m *Manager) poller() *poller {
	m.pollOnce.Do(func() {
		if m.noPoller {
			return
		}
		p, err := newPoller(m)
		if err != nil {
			m.log.Warn("idle connections keep a goroutine each: no poller", zap.Error(err))
			return
		}
		m.poll = p
	})
	return m.poll
}

// closePoller stops m's poller once no connection uses it (Shutdown).
func (m *Manager) closePoller() {
	m.pollOnce.Do(func() {}) // none is made after this
	if m.poll != nil {
		m.poll.close()
	}
}
