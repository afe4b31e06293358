package connmgr

import (
	"io"
	"sync"
	"syscall"
	"unsafe"
)

// clientPongLen is the length of the frame almost every client sends most
// often: {"type":"pong"} in one final, masked text frame (2 bytes of
// header, a 4-byte mask key, 15 bytes of payload).
const clientPongLen = 2 + 4 + len(pongFrame)

// isClientPong reports whether b starts with a whole client pong frame.
func isClientPong(b []byte) bool {
	if len(b) < clientPongLen || b[0] != 0x81 || b[1] != 0x80|byte(len(pongFrame)) {
		return false
	}
	key, payload := b[2:6], b[6:clientPongLen]
	for i := range payload {
		if payload[i]^key[i&3] != pongFrame[i] {
			return false
		}
	}
	return true
}

// awaitInput is a RawConn.Read callback that returns once the socket has
// input, an end or an error, taking nothing: it peeks into a scratch byte
// no one reads. It keeps no state, so a connection waiting for input (most
// of its life) holds no object for the wait.
func awaitInput(fd uintptr) bool {
	for {
		_, err := recvPeek(fd, inputScratch[:])
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		return true
	}
}

// inputScratch receives awaitInput's peeks; its content is never read.
var inputScratch [1]byte

// pongPeeker takes a whole client pong from the front of a socket's input
// if one is there: fn (its take method, bound once) is what RawConn.Read
// calls with the file descriptor. Anything else is left in the socket for
// the WebSocket reader. It never waits.
type pongPeeker struct {
	buf   [clientPongLen]byte
	pong  bool
	empty bool // the socket had no input
	err   error
	fn    func(fd uintptr) bool
}

func (p *pongPeeker) take(fd uintptr) bool {
	n, err := recvPeek(fd, p.buf[:])
	for err == syscall.EINTR {
		n, err = recvPeek(fd, p.buf[:])
	}
	switch {
	case err == syscall.EAGAIN:
		// Nothing after all: the WebSocket reader waits for it (or the
		// connection parks in the poller).
		p.empty = true
	case err != nil:
		p.err = err
	case n == 0:
		p.err = io.EOF
	case isClientPong(p.buf[:n]):
		// The bytes are there: reads take them at once.
		for k := 0; k < clientPongLen; {
			m, err := syscall.Read(int(fd), p.buf[k:])
			if err == syscall.EINTR {
				continue
			}
			if err != nil || m <= 0 {
				p.err = err
				if p.err == nil {
					p.err = io.ErrUnexpectedEOF
				}
				return true
			}
			k += m
		}
		p.pong = true
	}
	return true
}

// recvPeek is recv(2) with MSG_PEEK: it copies the socket's input to b
// without taking it. (syscall.Recvfrom would allocate for the address.)
func recvPeek(fd uintptr, b []byte) (int, error) {
	n, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), syscall.MSG_PEEK, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

var pongPeekers = sync.Pool{New: func() any {
	p := new(pongPeeker)
	p.fn = p.take
	return p
}}
