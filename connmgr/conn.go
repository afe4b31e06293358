package connmgr

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/internal/logfield"
)

// conn is one registered connection. It has no goroutine of its own besides
// the reader (the caller of Serve): whoever holds the flush token (flushing)
// writes the queue, and whoever holds it when closing is set runs the close.
type conn struct {
	ws   *websocket.Conn
	info Info
	// idle is set for connections made by [Manager.Upgrade]: the read loop
	// waits on it on a shallow stack. gate serializes the loop's look at the
	// read buffer with the close handshake, the only other reader.
	idle *idleConn
	gate sync.Mutex

	opened   int64        // manager clock (ns) at registration
	lastSeen atomic.Int64 // manager clock of the last inbound frame
	nextPing atomic.Int64 // manager clock of the next ping; written by Run only
	// tat is the inbound limiter's whole state (see allowInbound): one
	// field, no object of its own. Only the reader touches it, one message
	// at a time.
	tat int64

	mu       sync.Mutex
	queue    [][]byte // pending frames; nil while idle
	flushing bool     // a goroutine owns writing (and closing) this conn
	closing  bool     // set once, by closeConn
	finished bool     // the close handshake is over and OnClose was called
	// refused counts the client's messages in a row over the inbound
	// rate (reader only); it shares the flags' word.
	refused uint8
	// code is the CloseCode, stored in 32 bits so that it shares a word
	// with the flags above: conn stays in the 192-byte size class.
	code int32
	done chan struct{} // made only by a waiter; closed when finished
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
	if !c.flushing && c.idle != nil && m.directWrites {
		// Idle: write it from here if the socket takes it at once.
		c.flushing = true
		c.mu.Unlock()
		switch c.idle.tryWriteText(frame) {
		case tryWritten:
			if m.hooks.OnSent != nil {
				m.hooks.OnSent(1)
			}
			c.mu.Lock()
			if len(c.queue) == 0 && !c.closing {
				c.flushing = false
				c.mu.Unlock()
				return true
			}
			c.mu.Unlock() // frames queued or a close asked meanwhile: a flush runs them
		case tryOwed:
			m.owedWrites.Add(1)
			if m.hooks.OnSent != nil {
				m.hooks.OnSent(1) // the flush writes the rest first (idleConn.writePending)
			}
		case trySkipped:
			c.mu.Lock()
			c.queue = append(c.queue, frame)
			c.mu.Unlock()
		}
		m.work.add()
		m.startFlush(c)
		return true
	}
	c.queue = append(c.queue, frame)
	high := len(c.queue) == max(m.cfg.SendQueue/2, 1)
	start := !c.flushing
	if start {
		c.flushing = true
		m.work.add()
	}
	c.mu.Unlock()
	if high && m.hooks.OnQueueHigh != nil {
		m.hooks.OnQueueHigh()
	}
	if start {
		m.startFlush(c)
	}
	return true
}

// flush writes c's queue until it is empty, or runs the close if c is
// closing. The caller holds the flush token; flush releases it.
func (m *Manager) flush(c *conn) { m.flushFrom(c, nil) }

// flushFrom is flush writing head first, then the queue. Closing drops
// what is left of both.
//
// On an upgraded connection, frames written while more are waiting are
// corked: they collect in one buffer that goes out in one write once the
// batch is done (a resume's welcome and replay, a burst of events), not
// one syscall per frame.
func (m *Manager) flushFrom(c *conn, head [][]byte) {
	// One deadline serves many frames (a timer per frame is most of the cost
	// of a small write); see writeDeadline.
	dl := writeDeadline{clock: m.clock}
	if m.directWrites && c.idle != nil {
		dl.conn = c.idle.Conn // the socket's deadline (see writeDeadline)
	}
	defer dl.stop()
	if dl.conn != nil {
		// A direct write from enqueue failed: report it. (What one left
		// owed goes out with the next write, or when the run ends.)
		dl.get(m.cfg.WriteTimeout)
		if err := c.idle.takeOwedErr(); err != nil {
			m.writeFailed(c, err)
		}
	}
	corked := false
	for {
		c.mu.Lock()
		if c.closing {
			c.mu.Unlock()
			if corked {
				_ = c.idle.uncork(dl.batchTimeout(m.cfg.WriteTimeout)) // the close handshake follows
			}
			m.finishClose(c)
			return
		}
		var frame []byte
		switch {
		case len(head) > 0:
			frame, head[0], head = head[0], nil, head[1:]
		case len(c.queue) == 0 && corked:
			// Write the batch before giving up the token, then look again.
			c.mu.Unlock()
			corked = false
			if err := c.idle.uncork(dl.batchTimeout(m.cfg.WriteTimeout)); err != nil {
				m.writeFailed(c, err)
			}
			continue
		case len(c.queue) == 0 && c.idle != nil && c.idle.pendingBytes():
			// Bytes owed before any frame, and no frame to take them.
			c.mu.Unlock()
			dl.get(m.cfg.WriteTimeout)
			if err := c.idle.writePending(); err != nil {
				m.writeFailed(c, err)
			}
			continue
		case len(c.queue) == 0:
			c.queue = nil // an idle connection keeps no queue memory
			c.flushing = false
			c.mu.Unlock()
			return
		default:
			frame = c.queue[0]
			c.queue[0] = nil
			c.queue = c.queue[1:]
		}
		more := len(head) > 0 || len(c.queue) > 0
		c.mu.Unlock()

		if more && !corked && c.idle != nil {
			c.idle.cork()
			corked = true
		}
		ctx := dl.get(m.cfg.WriteTimeout)
		var err error
		if dl.conn != nil {
			err = c.idle.writeText(frame) // bounded by the socket's deadline
		} else {
			err = c.ws.Write(ctx, websocket.MessageText, frame)
		}
		if err != nil {
			m.writeFailed(c, err)
			continue
		}
		if m.hooks.OnSent != nil {
			m.hooks.OnSent(1)
		}
	}
}

// writeFailed closes c after a failed write: 4000 when it timed out (a
// client too slow to read), 1006 otherwise. The caller holds the flush
// token, so the close runs inline, on its next look at c.
func (m *Manager) writeFailed(c *conn, err error) {
	code := CodeAbnormal
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
		code = CodeSlowConsumer
	}
	m.log.Debug("connection write failed", zap.String("conn_id", c.info.ID), zap.Error(err))
	m.closeConn(c, code, true)
}

// closeHandshakeLimit bounds a close handshake on an upgraded connection
// (coder/websocket's own timeouts are 5 s to write and 5 s to wait).
const closeHandshakeLimit = 12 * time.Second

// tooBigDrainLimit bounds the drain of an oversized frame's remainder before
// the connection is dropped: enough for a client that is sending it, short
// for one that stopped.
const tooBigDrainLimit = 2 * time.Second

// writeDeadline bounds the writes of one flush run. On an upgraded
// connection with the system clock it is the socket's write deadline: a
// write blocked past it fails with os.ErrDeadlineExceeded, and
// coder/websocket gets context.Background(), which costs it no timer and no
// context.AfterFunc per frame (those allocations were most of a delivery's
// cost). Otherwise (a fake clock in tests, a connection from Serve) it is a
// context with a timeout. Either way one deadline serves many frames and is
// renewed once a tenth of it is used, so every write still has at least
// 90% of the timeout and a busy run sets it at most ten times per timeout.
type writeDeadline struct {
	clock   clock
	conn    net.Conn // set: use its write deadline
	ctx     context.Context
	cancel  context.CancelFunc
	renewAt time.Time
	set     bool
}

func (d *writeDeadline) get(timeout time.Duration) context.Context {
	now := d.clock.Now()
	if d.set && !now.After(d.renewAt) {
		return d.ctx
	}
	d.set, d.renewAt = true, now.Add(timeout/10)
	if d.conn != nil {
		_ = d.conn.SetWriteDeadline(now.Add(timeout))
		d.ctx = context.Background()
		return d.ctx
	}
	if d.cancel != nil {
		d.cancel()
	}
	d.ctx, d.cancel = d.clock.WithTimeout(context.Background(), timeout)
	return d.ctx
}

// batchTimeout is the timeout for a corked batch's write: none of its own
// when the socket deadline of the run bounds it (setting one would end the
// run's), else timeout.
func (d *writeDeadline) batchTimeout(timeout time.Duration) time.Duration {
	if d.conn != nil {
		d.get(timeout)
		return 0
	}
	return timeout
}

func (d *writeDeadline) stop() {
	if d.cancel != nil {
		d.cancel()
	}
	if d.conn != nil && d.set {
		_ = d.conn.SetWriteDeadline(time.Time{}) // the close handshake and pings set their own
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
	c.code = int32(code)
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
	code := CloseCode(c.code)
	c.mu.Unlock()

	var err error
	c.gate.Lock()
	if c.idle != nil {
		// coder/websocket bounds the close handshake's wait for the lock,
		// not its reads: it first drains the frame in progress, which after
		// an oversized frame is the rest of that frame. A peer that goes
		// silent mid-frame must not hold the connection forever.
		limit := closeHandshakeLimit
		if code == CodeTooBig {
			limit = tooBigDrainLimit
		}
		t := time.AfterFunc(limit, func() { _ = c.idle.Close() })
		defer t.Stop()
	}
	switch {
	case code == CodeTooBig && c.idle == nil:
		// coder/websocket already sent 1009 when the read limit tripped.
		// Without the raw connection the drain of the rest of the frame
		// cannot be bounded, so give up on the handshake.
		err = c.ws.CloseNow()
	case code.sendable():
		err = c.ws.Close(websocket.StatusCode(code), code.String())
	default:
		err = c.ws.CloseNow()
	}
	c.gate.Unlock()
	dur := time.Duration(m.now() - c.opened)
	// Checked first: the fields escape to the heap (0.5 KB per close) even
	// when info is off, and a revocation storm closes thousands at once.
	if ce := m.log.Check(zap.InfoLevel, "connection closed"); ce != nil {
		ce.Write(
			zap.String("conn_id", c.info.ID),
			zap.String("user_id", c.info.UserID),
			logfield.Handle(c.info.Handle),
			zap.Int("code", int(code)),
			zap.String("reason", code.String()),
			zap.Duration("duration", dur),
			zap.String("remote", c.info.Remote),
		)
	}
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
	if c.idle != nil {
		return m.idleReadLoop(c)
	}
	for {
		if code, done := m.readOne(c); done {
			return code
		}
	}
}

// idleReadLoop is the read loop of an upgraded connection. Between messages
// it waits for input on a shallow stack, below the WebSocket reader. A
// client pong it takes and handles itself (pong); every other message is
// read and handled by a short-lived goroutine (deep), so the deep stack of
// the frame reader exists only while a message is in flight and the loop's
// own goroutine stays at its starting size for its whole life.
func (m *Manager) idleReadLoop(c *conn) CloseCode {
	for {
		if code, done, _ := m.inputStep(c, true); done {
			return code
		}
	}
}

// inputStep handles what an upgraded connection's input holds: a client
// pong, or one message; done reports that the connection ends, with code.
// With wait it first waits for input, and reads a message on a short-lived
// goroutine (deep: the caller is the connection's long-lived one); without
// (the caller is a poller's wake goroutine) empty reports that the socket
// has no input.
func (m *Manager) inputStep(c *conn, wait bool) (code CloseCode, done, empty bool) {
	c.gate.Lock()
	buffered := c.idle.br.Buffered() > 0
	c.gate.Unlock()
	if !buffered {
		pong, empty, err := c.idle.nextInput(wait)
		switch {
		case err != nil:
			if c.isClosing() {
				// Our own close ended the socket; the close path knows the
				// code.
				return CodeNormal, true, false
			}
			m.log.Debug("connection read failed", zap.String("conn_id", c.info.ID), zap.Error(err))
			return CodeAbnormal, true, false
		case empty:
			return 0, false, true
		case pong:
			code, done := m.pong(c)
			return code, done, false
		}
	}
	if wait {
		code, done = deep(func() (CloseCode, bool) { return m.readOne(c) })
	} else {
		code, done = m.readOne(c)
	}
	return code, done, false
}

// deep runs f on a short-lived goroutine and waits for it, so that f's
// frames (the WebSocket reader, the parser, the logger) never grow the
// calling read loop's stack, which stays at its starting size for the
// connection's life. The result channel is taken per call, not per
// connection (an idle connection holds nothing but its goroutine); it is
// empty again once its one result is received, and goes back to the pool.
func deep(f func() (CloseCode, bool)) (CloseCode, bool) {
	res := readResults.Get().(chan readResult)
	go func() {
		code, done := f()
		res <- readResult{code, done}
	}()
	r := <-res
	readResults.Put(res)
	return r.code, r.done
}

type readResult struct {
	code CloseCode
	done bool
}

var readResults = sync.Pool{New: func() any { return make(chan readResult, 1) }}

// readOne reads and handles one client message; done reports that the
// connection ends, with code.
func (m *Manager) readOne(c *conn) (code CloseCode, done bool) {
	buf := smallReads.Get().(*[smallRead]byte)
	defer smallReads.Put(buf)
	typ, b, err := readMessage(c.ws, buf[:])
	if err != nil {
		return readErrCode(err), true
	}
	return m.received(c, typ, b)
}

// pong handles a pong the idle loop took itself, as received would, but
// on the loop's shallow stack: within the inbound rate it touches two
// fields and calls nothing deep (received's frame and the parser's grew
// the goroutine's stack past its 2 KiB, for the connection's life:
// BenchmarkHeartbeat's stack-B/conn). Over the rate, the refusal runs
// deep, as any message's handling does.
func (m *Manager) pong(c *conn) (code CloseCode, done bool) {
	if m.charge(c) {
		return 0, false
	}
	return deep(func() (CloseCode, bool) { return m.refuseInbound(c, websocket.MessageText, clientPong) })
}

// charge records that c's client sent a frame and charges it to c's
// inbound rate; false: the frame is over the rate (see refuseInbound).
func (m *Manager) charge(c *conn) bool {
	now := m.now()
	c.lastSeen.Store(now)
	if !m.allowInbound(c, now) {
		return false
	}
	c.refused = 0
	return true
}

// clientPong is the payload of the pong the idle loop takes itself.
var clientPong = []byte(pongFrame)

// received handles one client message read by c's reader; done reports
// that the connection ends, with code.
func (m *Manager) received(c *conn, typ websocket.MessageType, b []byte) (code CloseCode, done bool) {
	if !m.charge(c) {
		return m.refuseInbound(c, typ, b)
	}
	if typ != websocket.MessageText {
		m.log.Debug("binary frame from client", zap.String("conn_id", c.info.ID))
		return CodeProtocolError, true
	}
	msg, err := ParseClientMessage(b)
	if err != nil {
		m.log.Debug("bad client frame", zap.String("conn_id", c.info.ID), zap.Error(err))
		return CodeProtocolError, true
	}
	if msg.Type == TypeMessage && m.hooks.OnMessage != nil {
		if reply := m.hooks.OnMessage(&c.info, msg); reply != nil {
			m.enqueue(c, reply)
		}
	}
	return 0, false
}

// smallRead is the size of the pooled buffers client messages are read
// into: every pong and most messages fit, so reading one allocates nothing
// (coder/websocket's Read starts every message with a fresh 512-byte slice).
const smallRead = 256

var smallReads = sync.Pool{New: func() any { return new([smallRead]byte) }}

// readMessage reads ws's next message into small, or into a fresh slice
// once it outgrows small. The result may alias small: it must not be kept
// past the caller's use of small. ParseClientMessage copies what it keeps.
func readMessage(ws *websocket.Conn, small []byte) (websocket.MessageType, []byte, error) {
	typ, r, err := ws.Reader(context.Background())
	if err != nil {
		return 0, nil, err
	}
	n := 0
	for n < len(small) {
		k, err := r.Read(small[n:])
		n += k
		if err == io.EOF {
			return typ, small[:n], nil
		}
		if err != nil {
			return 0, nil, err
		}
	}
	b := make([]byte, n, 2*len(small))
	copy(b, small)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		k, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+k]
		if err == io.EOF {
			return typ, b, nil
		}
		if err != nil {
			return 0, nil, err
		}
	}
}

// floodRefusals is how many messages in a row a client may send over the
// inbound rate, each answered with a rate_limited error, before it is
// closed with 4008: a client that ignores the errors is flooding.
const floodRefusals = 32

// refuseInbound answers a frame over c's inbound rate: a message gets a
// rate_limited error naming its id (a pong or a frame that does not parse
// gets nothing); past floodRefusals refusals in a row c is closed with
// [CodeRateLimited].
func (m *Manager) refuseInbound(c *conn, typ websocket.MessageType, b []byte) (CloseCode, bool) {
	c.refused++
	if c.refused > floodRefusals {
		m.log.Debug("inbound rate exceeded", zap.String("conn_id", c.info.ID))
		return CodeRateLimited, true
	}
	if typ != websocket.MessageText {
		return CodeProtocolError, true
	}
	msg, err := ParseClientMessage(b)
	if err != nil {
		m.log.Debug("bad client frame", zap.String("conn_id", c.info.ID), zap.Error(err))
		return CodeProtocolError, true
	}
	if msg.Type == TypeMessage {
		if m.hooks.OnRateLimited != nil {
			m.hooks.OnRateLimited(&c.info)
		}
		m.enqueue(c, EncodeError(msg.ID, ErrCodeRateLimited, "over the inbound rate limit: not queued; retry later"))
	}
	return 0, false
}

// allowInbound charges one inbound message to c's budget and reports
// whether it fits. It is a token bucket in the single-number form of the
// generic cell rate algorithm: c.tat is the time at which c's bucket would
// be full again; each message pushes it one interval further, and a message
// that would push it more than the burst tolerance ahead of now is refused.
// A fresh connection (tat 0) starts with a full burst. Called only by c's
// reader, so c.tat needs no lock.
func (m *Manager) allowInbound(c *conn, now int64) bool {
	if m.inInterval == 0 {
		return true
	}
	tat := max(c.tat, now)
	if tat-now > m.inTolerance {
		return false
	}
	c.tat = tat + m.inInterval
	return true
}

// readErrCode maps a read error to the code the connection is closed with.
func readErrCode(err error) CloseCode {
	if errors.Is(err, websocket.ErrMessageTooBig) {
		return CodeTooBig
	}
	switch s := websocket.CloseStatus(err); s {
	case -1:
		return CodeAbnormal
	case websocket.StatusGoingAway:
		// A browser leaving the page.
		return CodeGoingAway
	default:
		// The client closed. Whatever code it chose is its own business:
		// recording it would let a client invent metric labels or pose as
		// a server decision (4000, 4500...). 1005 (no code) lands here too.
		return CodeNormal
	}
}

func (m *Manager) dropped(n int) {
	if n > 0 && m.hooks.OnDropped != nil {
		m.hooks.OnDropped(n)
	}
}
