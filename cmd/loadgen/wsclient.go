package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// WebSocket opcodes (RFC 6455 section 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// maxFramePayload bounds one incoming message; the gateway never sends more.
const maxFramePayload = 1 << 20

// wsGUID is the RFC 6455 accept-key suffix.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

var (
	errNotUpgraded = errors.New("loadgen: handshake refused")
	errBadFrame    = errors.New("loadgen: bad frame")
)

// dialers spreads client source addresses over 127.0.0.2..127.0.0.254 so a
// run is never limited by the ~28k ephemeral ports of one address pair.
type dialers struct {
	next atomic.Uint64
	ds   []*net.Dialer
}

func newDialers(timeout time.Duration) *dialers {
	d := &dialers{}
	for i := 2; i <= 254; i++ {
		d.ds = append(d.ds, &net.Dialer{
			Timeout:   timeout,
			LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(i))},
		})
	}
	return d
}

func (d *dialers) pick() *net.Dialer {
	return d.ds[d.next.Add(1)%uint64(len(d.ds))]
}

// wsConn is the client end of one WebSocket: a net.Conn, a small read buffer
// and a write lock. Read methods belong to one goroutine; writes may come from
// any.
type wsConn struct {
	nc  net.Conn
	br  *bufio.Reader
	buf []byte // reused payload buffer

	wmu sync.Mutex
}

// dialWS opens a TCP connection from one of the spread source addresses,
// sends the HTTP/1.1 upgrade with "Authorization: Bearer token" (omitted when
// token is empty), checks the 101 and its accept key, and returns the open
// connection. Nothing is read past the handshake.
func dialWS(ctx context.Context, d *dialers, addr, path, token string) (*wsConn, error) {
	nc, err := d.pick().DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	var key [16]byte
	binary.LittleEndian.PutUint64(key[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(key[8:], rand.Uint64())
	k := base64.StdEncoding.EncodeToString(key[:])

	req := make([]byte, 0, 256+len(token))
	req = append(req, "GET "...)
	req = append(req, path...)
	req = append(req, " HTTP/1.1\r\nHost: "...)
	req = append(req, addr...)
	req = append(req, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "...)
	req = append(req, k...)
	if token != "" {
		req = append(req, "\r\nAuthorization: Bearer "...)
		req = append(req, token...)
	}
	req = append(req, "\r\n\r\n"...)
	if _, err := nc.Write(req); err != nil {
		nc.Close()
		return nil, fmt.Errorf("write upgrade: %w", err)
	}
	c := &wsConn{nc: nc, br: bufio.NewReaderSize(nc, 1024)}
	if err := c.readUpgrade(k); err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

// readUpgrade reads the response head and checks it is a 101 with the right
// Sec-WebSocket-Accept.
func (c *wsConn) readUpgrade(key string) error {
	status, err := c.br.ReadSlice('\n')
	if err != nil {
		return fmt.Errorf("read status: %w", err)
	}
	code := 0
	if len(status) >= 12 && bytes.HasPrefix(status, []byte("HTTP/1.1 ")) {
		code, _ = strconv.Atoi(string(status[9:12]))
	}
	accepted := false
	want := acceptKey(key)
	for {
		line, err := c.br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("read headers: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(name, []byte("Sec-WebSocket-Accept")) {
			accepted = string(bytes.TrimSpace(value)) == want
		}
	}
	if code != 101 {
		return fmt.Errorf("%w: HTTP %d", errNotUpgraded, code)
	}
	if !accepted {
		return fmt.Errorf("%w: bad Sec-WebSocket-Accept", errNotUpgraded)
	}
	return nil
}

func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// readMessage returns the next data or close message. Control frames other
// than close (ping, pong) are handled here: a ping is answered with a pong.
// The returned payload is valid until the next call.
func (c *wsConn) readMessage() (op byte, payload []byte, err error) {
	c.buf = c.buf[:0]
	msgOp := byte(0)
	for {
		fin, op, n, err := readFrameHeader(c.br)
		if err != nil {
			return 0, nil, err
		}
		if op >= opClose {
			if n > 125 || !fin {
				return 0, nil, fmt.Errorf("%w: control frame", errBadFrame)
			}
			var ctl [125]byte
			if _, err := io.ReadFull(c.br, ctl[:n]); err != nil {
				return 0, nil, err
			}
			switch op {
			case opClose:
				return opClose, append(c.buf[:0], ctl[:n]...), nil
			case opPing:
				if err := c.writeFrame(opPong, ctl[:n]); err != nil {
					return 0, nil, err
				}
			}
			continue
		}
		if op != opContinuation {
			msgOp = op
		}
		if len(c.buf)+int(n) > maxFramePayload {
			return 0, nil, fmt.Errorf("%w: message too big", errBadFrame)
		}
		start := len(c.buf)
		c.buf = append(c.buf, make([]byte, n)...)
		if _, err := io.ReadFull(c.br, c.buf[start:]); err != nil {
			return 0, nil, err
		}
		if fin {
			return msgOp, c.buf, nil
		}
	}
}

// readFrameHeader reads one server frame header. Server frames must not be
// masked.
func readFrameHeader(r *bufio.Reader) (fin bool, op byte, n uint64, err error) {
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return false, 0, 0, err
	}
	fin = h[0]&0x80 != 0
	op = h[0] & 0x0F
	if h[0]&0x70 != 0 {
		return false, 0, 0, fmt.Errorf("%w: reserved bits set", errBadFrame)
	}
	if h[1]&0x80 != 0 {
		return false, 0, 0, fmt.Errorf("%w: masked server frame", errBadFrame)
	}
	switch op {
	case opContinuation, opText, opBinary, opClose, opPing, opPong:
	default:
		return false, 0, 0, fmt.Errorf("%w: opcode %d", errBadFrame, op)
	}
	n = uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var e [2]byte
		if _, err := io.ReadFull(r, e[:]); err != nil {
			return false, 0, 0, err
		}
		n = uint64(binary.BigEndian.Uint16(e[:]))
	case 127:
		var e [8]byte
		if _, err := io.ReadFull(r, e[:]); err != nil {
			return false, 0, 0, err
		}
		n = binary.BigEndian.Uint64(e[:])
	}
	if n > maxFramePayload {
		return false, 0, 0, fmt.Errorf("%w: frame too big", errBadFrame)
	}
	return fin, op, n, nil
}

// appendFrame appends one masked client frame.
func appendFrame(dst []byte, op byte, payload []byte, mask uint32) []byte {
	dst = append(dst, 0x80|op)
	switch n := len(payload); {
	case n < 126:
		dst = append(dst, 0x80|byte(n))
	case n <= 0xFFFF:
		dst = append(dst, 0x80|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	var m [4]byte
	binary.BigEndian.PutUint32(m[:], mask)
	dst = append(dst, m[:]...)
	for i, b := range payload {
		dst = append(dst, b^m[i&3])
	}
	return dst
}

// writeFrame writes one masked frame; safe for concurrent use.
func (c *wsConn) writeFrame(op byte, payload []byte) error {
	var stack [160]byte
	f := appendFrame(stack[:0], op, payload, rand.Uint32())
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.nc.Write(f)
	return err
}

var pongMsg = []byte(`{"type":"pong"}`)

// writePong answers a protocol-level {"type":"ping"}.
func (c *wsConn) writePong() error { return c.writeFrame(opText, pongMsg) }

// closeCode is the status code of a close payload, or 1005 when it has none.
func closeCode(payload []byte) int {
	if len(payload) < 2 {
		return 1005
	}
	return int(binary.BigEndian.Uint16(payload))
}
