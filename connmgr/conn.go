package connmgr

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"
)

// conn is one registered connection. It has no goroutine of its own besides
// the reader (the caller of Serve): whoever holds the flush token (flushing)
// writes the queue, and whoever holds it when closing is set runs the close.
type conn struct {
	ws   *websocket.Conn
	info Info

	opened   int64        // manager clock (ns) at registration
	lastSeen atomic.Int64 // manager clock of the last inbound frame
	nextPing atomic.Int64 // manager clock of the next ping; written by Run only

	mu       sync.Mutex
	queue    [][]byte // pending frames; nil while idle
	flushing bool     // a goroutine owns writing (and closing) this conn
	closing  bool     // set once, by closeConn
	finished bool     // the close handshake is over and OnClose was called
	code     CloseCode
	done     chan struct{} // made only by a waiter; closed when finished
}

// enqueue appends frame to c's queue without blocking and, if no flush is
// running, starts one. It reports whether the frame was queued. A full queue
// closes c with CodeSlowConsumer.
func (m *Manager) enqueue(c *conn, frame []byte) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		m.dropped(1)
		return false
	}
	if len(c.queue) >= m.cfg.SendQueue {
		c.mu.Unlock()
		m.dropped(1)
		m.closeConn(c, CodeSlowConsumer, false)
		return false
	}
	c.queue = append(c.queue, frame)
	start := !c.flushing
	if start {
		c.flushing = true
		m.work.add()
	}
	c.mu.Unlock()
	if start {
		go func() {
			defer m.work.done()
			m.flush(c)
		}()
	}
	return true
}

// flush writes c's queue until it is empty, or runs the close if c is
// closing. The caller holds the flush token; flush releases it.
func (m *Manager) flush(c *conn) {
	// One deadline serves many frames: a timer per frame is most of the cost
	// of a small write. It is renewed once half of it is used, so every
	// write still has at least WriteTimeout/2 and a long, healthy stream is
	// never cut.
	var (
		ctx     context.Context
		cancel  context.CancelFunc = func() {}
		renewAt time.Time
	)
	defer func() { cancel() }()
	for {
		c.mu.Lock()
		if c.closing {
			c.mu.Unlock()
			m.finishClose(c)
			return
		}
		if len(c.queue) == 0 {
			c.queue = nil // an idle connection keeps no queue memory
			c.flushing = false
			c.mu.Unlock()
			return
		}
		frame := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		c.mu.Unlock()

		if now := time.Now(); ctx == nil || now.After(renewAt) {
			cancel()
			ctx, cancel = context.WithTimeout(context.Background(), m.cfg.WriteTimeout)
			renewAt = now.Add(m.cfg.WriteTimeout / 2)
		}
		err := c.ws.Write(ctx, websocket.MessageText, frame)
		if err != nil {
			code := CodeAbnormal
			if errors.Is(err, context.DeadlineExceeded) {
				code = CodeSlowConsumer
			}
			m.log.Debug("connection write failed", zap.String("conn_id", c.info.ID), zap.Error(err))
			m.closeConn(c, code, true)
			continue
		}
		if m.hooks.OnSent != nil {
			m.hooks.OnSent(1)
		}
	}
}

// closeConn starts closing c with code; only the first call has an effect
// and it reports whether it did. It unregisters c at once and drops its
// queue. The close handshake is run by the flush token holder: the running
// flush if any, else the caller when inline is set, else a new goroutine.
func (m *Manager) closeConn(c *conn, code CloseCode, inline bool) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	c.closing = true
	c.code = code
	dropped := len(c.queue)
	clear(c.queue)
	c.queue = nil
	m.reg.remove(c)
	run := !c.flushing
	if run {
		c.flushing = true
		if !inline {
			m.work.add()
		}
	}
	c.mu.Unlock()

	m.dropped(dropped)
	switch {
	case run && inline:
		m.finishClose(c)
	case run:
		go func() {
			defer m.work.done()
			m.finishClose(c)
		}()
	}
	return true
}

// finishClose runs the close handshake (bounded by coder/websocket's own
// timeouts), logs the close and calls OnClose. It runs once per conn, by the
// flush token holder.
func (m *Manager) finishClose(c *conn) {
	c.mu.Lock()
	code := c.code
	c.mu.Unlock()

	var err error
	if code.sendable() {
		err = c.ws.Close(websocket.StatusCode(code), code.String())
	} else {
		err = c.ws.CloseNow()
	}
	dur := time.Duration(m.now() - c.opened)
	m.log.Info("connection closed",
		zap.String("conn_id", c.info.ID),
		zap.String("user_id", c.info.UserID),
		zap.String("handle", c.info.Handle),
		zap.Int("code", int(code)),
		zap.String("reason", code.String()),
		zap.Duration("duration", dur),
		zap.String("remote", c.info.Remote),
	)
	if err != nil {
		m.log.Debug("close handshake incomplete", zap.String("conn_id", c.info.ID), zap.Error(err))
	}
	if m.hooks.OnClose != nil {
		m.hooks.OnClose(&c.info, code, dur)
	}

	c.mu.Lock()
	c.finished = true
	if c.done != nil {
		close(c.done)
	}
	c.mu.Unlock()
}

func (c *conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// waitClosed blocks until c's close has finished.
func (m *Manager) waitClosed(c *conn) {
	c.mu.Lock()
	if c.finished {
		c.mu.Unlock()
		return
	}
	if c.done == nil {
		c.done = make(chan struct{})
	}
	done := c.done
	c.mu.Unlock()
	<-done
}

// readLoop reads client frames until the connection fails and returns the
// code to close it with. Reads use a context without Done so that coder/websocket
// registers no per-read timer: a close from anywhere unblocks the read.
func (m *Manager) readLoop(c *conn) CloseCode {
	for {
		typ, b, err := c.ws.Read(context.Background())
		if err != nil {
			return readErrCode(err)
		}
		c.lastSeen.Store(m.now())
		if typ != websocket.MessageText {
			m.log.Debug("binary frame from client", zap.String("conn_id", c.info.ID))
			return CodeProtocolError
		}
		msg, err := ParseClientMessage(b)
		if err != nil {
			m.log.Debug("bad client frame", zap.String("conn_id", c.info.ID), zap.Error(err))
			return CodeProtocolError
		}
		if msg.Type == TypeMessage && m.hooks.OnMessage != nil {
			m.hooks.OnMessage(&c.info, msg.Data)
		}
	}
}

// readErrCode maps a read error to the code the connection is closed with.
func readErrCode(err error) CloseCode {
	if errors.Is(err, websocket.ErrMessageTooBig) {
		return CodeTooBig
	}
	switch s := websocket.CloseStatus(err); s {
	case -1:
		return CodeAbnormal
	case websocket.StatusNoStatusRcvd:
		// A browser's ws.close() without a code.
		return CodeNormal
	default:
		return CloseCode(s)
	}
}

func (m *Manager) dropped(n int) {
	if n > 0 && m.hooks.OnDropped != nil {
		m.hooks.OnDropped(n)
	}
}
