package connmgr

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// Buffer sizes for upgraded connections. net/http hands a hijacker two 4 KiB
// buffers that coder/websocket keeps for the connection's whole life: 8 KiB
// per idle connection. Here they are 128 bytes each:
//   - the write buffer carries only coder/websocket's own control frames
//     (pongs, the close frame): the manager writes data frames itself
//     (idleConn.writeText). A control frame is at most 127 bytes (a 2-byte
//     server header and 125 of payload), so it still fits whole and reaches
//     idleConn.Write in one call, which the close detection and the
//     interleaving with writeText rely on;
//   - the read buffer holds a client frame's header (at most 14 bytes) and a
//     short message (a pong, a small inbound message) in one read; a longer
//     payload is read past it, straight into the message, at the cost of
//     one more read call.
//
// Against 512-byte buffers that saves 768 bytes of heap per connection.
const (
	readBufferSize  = 128
	writeBufferSize = 128
)

// maxControlFrame is the largest frame a server writes as a control frame.
const maxControlFrame = 2 + 125

// A control frame must fit the write buffer whole (see above): this does
// not compile if writeBufferSize is made smaller.
var _ [writeBufferSize - maxControlFrame]struct{}

// Upgrade accepts the WebSocket handshake on w and r (the caller has already
// authenticated it) and runs the connection like [Manager.Start], built for
// many idle connections:
//   - the hijacked connection gets 128-byte buffers instead of net/http's
//     two 4 KiB ones;
//   - the read loop waits for input on a shallow stack, with no WebSocket
//     frame parsing on it, and hands each inbound message to a short-lived
//     goroutine; an idle connection's goroutine never grows its stack.
//
// It returns once the welcome is written, with the errors of [Manager.Serve];
// if the handshake itself fails, websocket.Accept has already answered r.
func (m *Manager) Upgrade(w http.ResponseWriter, r *http.Request, info Info) error {
	return m.upgrade(w, r, info, nil)
}

// UpgradeWith is [Manager.Upgrade] for a connection whose first frames
// depend on when it started receiving events: start is called once the
// connection is registered (every event sent to it from then on is held
// in its queue) and before anything is written to it. The welcome gets
// start's positions and resume outcome; start's Replay frames follow it,
// then the held frames start's Skip does not drop, then live frames. So a
// client resuming from a position gets the events it missed, then the
// live ones, with no gap: whatever was published after the connection
// was registered is held, and start reads what was before.
//
// start runs on the handshake's goroutine and should be bounded (the
// caller's request context); frames held meanwhile count against
// [Config.SendQueue] as usual.
func (m *Manager) UpgradeWith(w http.ResponseWriter, r *http.Request, info Info, start func() Start) error {
	return m.upgrade(w, r, info, start)
}

func (m *Manager) upgrade(w http.ResponseWriter, r *http.Request, info Info, start func() Start) error {
	h := &hijacker{ResponseWriter: w}
	ws, err := websocket.Accept(h, r, &websocket.AcceptOptions{
		// The caller checked Origin against its own policy.
		InsecureSkipVerify: true,
		CompressionMode:    websocket.CompressionDisabled,
	})
	if err != nil {
		return err
	}
	m.work.add()
	c, stop, err := m.register(context.Background(), ws, info, start != nil)
	if err != nil {
		m.work.done()
		return err
	}
	c.idle = h.idle
	var head [][]byte
	if start != nil {
		head = m.begin(c, start())
	}
	m.flushFrom(c, head)
	m.startReading(c, stop)
	return nil
}

// hijacker is the ResponseWriter given to websocket.Accept: its Hijack
// returns the connection with small buffers, wrapped so the read loop can
// wait for input below the WebSocket reader.
type hijacker struct {
	http.ResponseWriter
	idle *idleConn
	// switching: WriteHeader(101) was held back; Hijack leaves the
	// response in the connection's pending bytes, to go out in one write
	// with the welcome (one syscall per handshake instead of two).
	switching bool
}

// WriteHeader implements http.ResponseWriter, holding back the 101.
func (h *hijacker) WriteHeader(code int) {
	if code == http.StatusSwitchingProtocols {
		h.switching = true
		return
	}
	h.ResponseWriter.WriteHeader(code)
}

// Hijack implements http.Hijacker.
func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	ic := &idleConn{Conn: conn}
	if sc, ok := conn.(syscall.Conn); ok {
		ic.raw, _ = sc.SyscallConn()
	}
	if h.switching {
		// net/http wrote nothing (it flushes a response on Hijack only
		// if WriteHeader reached it): the next write sends the 101 first.
		var b bytes.Buffer
		b.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
		_ = h.Header().Write(&b)
		b.WriteString("\r\n")
		ic.wbuf = b.Bytes()
	}
	// Bytes a client sent right behind its handshake are already in
	// net/http's buffer: carry them over, buffered, so the WebSocket reader
	// (which keeps what is buffered) sees them first.
	var src io.Reader = ic
	size := readBufferSize
	n := brw.Reader.Buffered()
	if n > 0 {
		head, _ := brw.Reader.Peek(n)
		src = io.MultiReader(bytes.NewReader(bytes.Clone(head)), ic)
		size = max(size, n)
	}
	ic.br = bufio.NewReaderSize(src, size)
	if n > 0 {
		_, _ = ic.br.Peek(n)
		// coder/websocket moves these bytes from the buffer into a reader in
		// front of the socket, where Buffered cannot see them: the first
		// wait must not block on the socket.
		ic.primed = true
	}
	h.idle = ic
	return ic, bufio.NewReadWriter(ic.br, bufio.NewWriterSize(ic, writeBufferSize)), nil
}

// idleConn lets a read loop wait until the socket has input without entering
// the WebSocket reader: nextInput peeks at the raw socket (taking only a
// whole client pong), or, without one, reads one byte, kept for the next
// Read. br is the reader coder/websocket keeps (it resets it, but it is the
// same object); its Buffered count tells whether input is waiting above the
// socket. Reads are serialized by mu, so a close handshake reading while the
// read loop waits gets its bytes in order.
//
// The fields are ordered so that idleConn, with the poller's three, fills
// the 128-byte size class exactly.
type idleConn struct {
	net.Conn
	br *bufio.Reader

	mu      sync.Mutex
	pending [1]byte
	has     bool
	primed  bool // input from the handshake's read buffer is waiting
	// closeSent: coder/websocket wrote a close frame (its close handshake,
	// or its answer to the client's close); writeText refuses after it.
	// Under wmu, as is corked.
	closeSent bool
	corked    bool

	// wmu serializes writes with cork and uncork; while corked, writes
	// collect in wbuf (see Manager.flushFrom).
	wmu  sync.Mutex
	wbuf []byte
	// raw is the socket for tryWriteText; nil when the connection has
	// none (then every frame goes through a flush).
	raw syscall.RawConn
	// owedErr is the error of a tryWriteText that failed; the flush it
	// handed over to reports it (the bytes it owes are in wbuf).
	owedErr error

	// Set when the connection waits for input in the manager's poller
	// (see poller.go) instead of on a goroutine of its own: state says who
	// owns the read side, fd is the socket's descriptor as the poller knows
	// it, owner is the registered connection and poll the poller.
	state atomic.Int32
	fd    int32
	owner *conn
	poll  *poller
}

// opCloseFin is the first byte of an unfragmented close frame.
const opCloseFin = 0x88

// maxCorked bounds what a corked connection collects before it writes
// anyway.
const maxCorked = 64 << 10

// Write implements net.Conn: while corked, p is appended to the batch
// (written at once when the batch would outgrow maxCorked).
func (c *idleConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	// coder/websocket writes each control frame whole, in one call (it
	// flushes its buffer at the end of every frame, and control frames
	// are small), so a close frame starts p.
	if len(p) > 0 && p[0] == opCloseFin {
		c.closeSent = true
	}
	if !c.corked {
		if len(c.wbuf) > 0 {
			if err := c.sendAfterPendingLocked(p); err != nil {
				return 0, err
			}
			return len(p), nil
		}
		return c.Conn.Write(p)
	}
	if len(c.wbuf)+len(p) > maxCorked {
		if err := c.writeBatchLocked(0); err != nil {
			return 0, err
		}
		if len(p) > maxCorked {
			return c.Conn.Write(p)
		}
	}
	c.wbuf = append(c.wbuf, p...)
	return len(p), nil
}

// writeText writes one final, unmasked text frame with payload p, whole:
// header and payload in one write to the socket, or appended to the corked
// batch. The manager writes every data frame of an upgraded connection
// this way rather than through coder/websocket's Conn.Write, which would
// lock its message writer, encode into its buffer and copy: a delivery is
// then one header of 2 to 10 bytes and one syscall. Frames and
// coder/websocket's own control frames (pongs, close) interleave only
// whole, under wmu; after a close frame nothing more is written. The
// caller holds the flush token (one writer of data frames at a time) and
// has set the socket's write deadline.
func (c *idleConn) writeText(p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return net.ErrClosed
	}
	if c.corked {
		if len(c.wbuf) > 0 && len(c.wbuf)+textHeaderMax+len(p) > maxCorked {
			if err := c.writeBatchLocked(0); err != nil {
				return err
			}
		}
		c.wbuf = appendTextFrame(c.wbuf, p)
		return nil
	}
	if len(c.wbuf) > 0 {
		c.wbuf = appendTextFrame(c.wbuf, p)
		return c.sendAfterPendingLocked(nil)
	}
	bp := frameBufs.Get().(*[]byte)
	b := appendTextFrame((*bp)[:0], p)
	_, err := c.Conn.Write(b)
	if cap(b) <= maxPooledFrame {
		*bp = b[:0]
		frameBufs.Put(bp)
	}
	return err
}

// tryWriteText writes one text frame with payload p if the socket takes it
// at once, without waiting: the caller (Manager.enqueue, holding the flush
// token of an idle connection) then needs no flush run at all, so a
// fan-out writes to every connection with room in its socket buffer (all
// but the slow ones) from the publishing goroutine, one syscall each.
//
// It returns tryWritten when the frame went out whole; tryOwed when only a
// part did or the write failed: the bytes still owed stay in wbuf, or the
// error in owedErr, for the flush the caller must start (it sends the
// owed bytes ahead of its first write, or alone: writePending); and
// trySkipped, having written nothing, when the connection has no raw
// socket, a control frame write holds it, or a close frame was sent: the
// caller queues the frame as usual.
func (c *idleConn) tryWriteText(p []byte) tryResult {
	if c.raw == nil || !c.wmu.TryLock() {
		return trySkipped
	}
	defer c.wmu.Unlock()
	if c.closeSent || c.corked || len(c.wbuf) > 0 || c.owedErr != nil {
		return trySkipped
	}
	w := rawWriters.Get().(*rawWriter)
	w.b = appendTextFrame(w.b[:0], p)
	w.n, w.err = 0, nil
	err := c.raw.Write(w.fn)
	if err == nil && w.err != nil && w.err != syscall.EAGAIN {
		err = w.err
	}
	res := tryWritten
	switch {
	case err != nil:
		// The flush reports it (and closes the connection).
		c.owedErr = err
		res = tryOwed
	case w.n == 0:
		res = trySkipped // no room at all: queue it
	case w.n < len(w.b):
		c.wbuf = append(c.wbuf[:0], w.b[w.n:]...)
		res = tryOwed
	}
	if cap(w.b) <= maxPooledFrame {
		w.b = w.b[:0]
		rawWriters.Put(w)
	}
	return res
}

// tryResult is what tryWriteText did.
type tryResult uint8

const (
	tryWritten tryResult = iota
	tryOwed
	trySkipped
)

// takeOwedErr returns (and forgets) the error of a failed tryWriteText.
func (c *idleConn) takeOwedErr() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	err := c.owedErr
	c.owedErr = nil
	return err
}

// pendingBytes reports whether bytes wait to go out before the next frame
// (the held-back 101, or what a direct write owes).
func (c *idleConn) pendingBytes() bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return !c.corked && len(c.wbuf) > 0
}

// writePending writes the pending bytes, within the socket's write
// deadline the caller set.
func (c *idleConn) writePending() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.corked {
		return nil // part of the batch being built
	}
	err := c.writeBatchLocked(0)
	c.wbuf = nil
	return err
}

// rawWriter is one non-blocking write attempt on a raw socket: fn (its
// write method, bound once) is what RawConn.Write calls with the file
// descriptor; returning true tells it not to wait for the socket to become
// writable.
type rawWriter struct {
	b   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

func (w *rawWriter) write(fd uintptr) bool {
	for w.n < len(w.b) {
		k, err := syscall.Write(int(fd), w.b[w.n:])
		if k > 0 {
			w.n += k
		}
		if err == syscall.EINTR {
			continue
		}
		if err != nil || k <= 0 {
			w.err = err
			break
		}
	}
	return true
}

var rawWriters = sync.Pool{New: func() any {
	w := &rawWriter{b: make([]byte, 0, 512)}
	w.fn = w.write
	return w
}}

// frameBufs holds the buffers writeText assembles a frame in; frames over
// maxPooledFrame are not kept.
var frameBufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

const maxPooledFrame = 16 << 10

// textHeaderMax is the largest frame header appendTextFrame writes.
const textHeaderMax = 10

// appendTextFrame appends a final, unmasked text frame with payload p to b
// (RFC 6455 section 5.2): a header of 2, 4 or 10 bytes, then p.
func appendTextFrame(b, p []byte) []byte {
	n := len(p)
	switch {
	case n <= 125:
		b = append(b, 0x81, byte(n)) // FIN, text; length
	case n <= 0xffff:
		b = append(b, 0x81, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x81, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, p...)
}

// sendAfterPendingLocked writes the pending bytes (the held-back 101, or
// what a direct write owes) and then p, in one write, and drops the
// pending buffer. The caller holds wmu and is not corked.
func (c *idleConn) sendAfterPendingLocked(p []byte) error {
	c.wbuf = append(c.wbuf, p...)
	err := c.writeBatchLocked(0)
	c.wbuf = nil
	return err
}

// cork starts collecting writes.
func (c *idleConn) cork() {
	c.wmu.Lock()
	c.corked = true
	c.wmu.Unlock()
}

// uncork writes what was collected in one write, bounded by timeout, and
// stops collecting.
func (c *idleConn) uncork(timeout time.Duration) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.corked = false
	err := c.writeBatchLocked(timeout)
	c.wbuf = nil // an idle connection keeps no batch memory
	return err
}

// writeBatchLocked writes wbuf, within timeout when it is not 0.
func (c *idleConn) writeBatchLocked(timeout time.Duration) error {
	if len(c.wbuf) == 0 {
		return nil
	}
	if timeout > 0 {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(timeout))
		defer func() { _ = c.Conn.SetWriteDeadline(time.Time{}) }()
	}
	_, err := c.Conn.Write(c.wbuf)
	c.wbuf = c.wbuf[:0]
	return err
}

// Close implements net.Conn: it closes the socket and ends the connection
// if it was waiting in the poller.
func (c *idleConn) Close() error {
	err := c.Conn.Close()
	c.socketClosed()
	return err
}

// Read implements net.Conn.
func (c *idleConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.has {
		if len(p) == 0 {
			return 0, nil
		}
		p[0] = c.pending[0]
		c.has = false
		return 1, nil
	}
	return c.Conn.Read(p)
}

// nextInput looks at the socket's input; with wait it first blocks until
// there is some, or an end or error. On a raw socket it takes a client
// pong at the front of the input itself and reports it (pong): the most
// frequent frame is handled without the WebSocket reader. Anything else
// stays for the reader. empty reports that the socket had no input after
// all (without wait: the connection may park in the poller). Without a raw
// socket it always waits, for one byte it keeps for the next Read.
func (c *idleConn) nextInput(wait bool) (pong, empty bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.has || c.primed {
		c.primed = false
		return false, false, nil
	}
	if c.raw != nil {
		if wait {
			if err := c.raw.Read(awaitInput); err != nil {
				return false, false, err
			}
		}
		p := pongPeekers.Get().(*pongPeeker)
		p.pong, p.empty, p.err = false, false, nil
		err := c.raw.Read(p.fn)
		if err == nil {
			err = p.err
		}
		pong, empty = p.pong, p.empty && err == nil
		pongPeekers.Put(p)
		return pong, empty, err
	}
	n, err := c.Conn.Read(c.pending[:])
	if n == 1 {
		c.has = true
		return false, false, nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return false, false, err
}
