package connmgr

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Buffer sizes for upgraded connections. net/http hands a hijacker two 4 KiB
// buffers that coder/websocket keeps for the connection's whole life: 8 KiB
// per idle connection. Client frames are small (pongs, short messages) and
// larger reads and writes bypass a bufio buffer anyway, so small buffers
// cost nothing on the wire.
const (
	readBufferSize  = 512
	writeBufferSize = 512
)

// Upgrade accepts the WebSocket handshake on w and r (the caller has already
// authenticated it) and runs the connection like [Manager.Start], built for
// many idle connections:
//   - the hijacked connection gets 512-byte buffers instead of net/http's
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
	go func() {
		defer m.work.done()
		m.run(c, stop)
	}()
	return nil
}

// hijacker is the ResponseWriter given to websocket.Accept: its Hijack
// returns the connection with small buffers, wrapped so the read loop can
// wait for input below the WebSocket reader.
type hijacker struct {
	http.ResponseWriter
	idle *idleConn
}

// Hijack implements http.Hijacker.
func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	ic := &idleConn{Conn: conn}
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
// the WebSocket reader: waitReadable reads one byte, kept for the next Read.
// br is the reader coder/websocket keeps (it resets it, but it is the same
// object); its Buffered count tells whether input is waiting above the
// socket. Reads are serialized by mu, so a close handshake reading while the
// read loop waits gets the byte in order.
type idleConn struct {
	net.Conn
	br *bufio.Reader

	mu      sync.Mutex
	pending [1]byte
	has     bool
	primed  bool // input from the handshake's read buffer is waiting

	// wmu serializes writes with cork and uncork; while corked, writes
	// collect in wbuf (see Manager.flushFrom).
	wmu    sync.Mutex
	corked bool
	wbuf   []byte
}

// maxCorked bounds what a corked connection collects before it writes
// anyway.
const maxCorked = 64 << 10

// Write implements net.Conn: while corked, p is appended to the batch
// (written at once when the batch would outgrow maxCorked).
func (c *idleConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.corked {
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

// waitReadable blocks until the socket has input or fails.
func (c *idleConn) waitReadable() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.has || c.primed {
		c.primed = false
		return nil
	}
	n, err := c.Conn.Read(c.pending[:])
	if n == 1 {
		c.has = true
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}
