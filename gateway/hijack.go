package gateway

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
)

// Buffer sizes for upgraded connections. net/http hands a hijacker two 4 KiB
// buffers that coder/websocket keeps for the connection's whole life: 8 KiB
// per idle connection, more than everything else it costs. Client frames
// are small (pongs, short messages) and larger reads and writes bypass a
// bufio buffer anyway, so small buffers cost nothing on the wire.
const (
	wsReadBuffer  = 512
	wsWriteBuffer = 512
)

// smallBufferWriter is the ResponseWriter given to websocket.Accept: its
// Hijack returns the connection with small buffers instead of net/http's.
type smallBufferWriter struct {
	http.ResponseWriter
}

// Hijack implements http.Hijacker.
func (w smallBufferWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// Bytes a client sent right behind its handshake are already in
	// net/http's buffer: carry them over, buffered, so the WebSocket reader
	// (which keeps what is buffered) sees them first.
	var src io.Reader = conn
	size := wsReadBuffer
	n := brw.Reader.Buffered()
	if n > 0 {
		head, _ := brw.Reader.Peek(n)
		src = io.MultiReader(bytes.NewReader(bytes.Clone(head)), conn)
		size = max(size, n)
	}
	r := bufio.NewReaderSize(src, size)
	if n > 0 {
		_, _ = r.Peek(n)
	}
	return conn, bufio.NewReadWriter(r, bufio.NewWriterSize(conn, wsWriteBuffer)), nil
}
