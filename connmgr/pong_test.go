package connmgr

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// maskedFrame is a final client text frame with payload p, masked with key.
func maskedFrame(key [4]byte, p string) []byte {
	if len(p) > 125 {
		panic("maskedFrame: short frames only")
	}
	b := append([]byte{0x81, 0x80 | byte(len(p))}, key[:]...)
	for i := range len(p) {
		b = append(b, p[i]^key[i&3])
	}
	return b
}

func TestIsClientPong(t *testing.T) {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	pong := maskedFrame(key, pongFrame)
	tests := []struct {
		name string
		in   []byte
		want bool
	}{
		{"pong", pong, true},
		{"pong with a zero key", maskedFrame([4]byte{}, pongFrame), true},
		{"pong then more", append(append([]byte{}, pong...), 0x81), true},
		{"a byte short", pong[:len(pong)-1], false},
		{"not final", append([]byte{0x01}, pong[1:]...), false},
		{"compressed (rsv1)", append([]byte{0xC1}, pong[1:]...), false},
		{"binary", append([]byte{0x82}, pong[1:]...), false},
		{"unmasked", append([]byte{0x81, byte(len(pongFrame))}, pongFrame...), false},
		{"other payload of the same length", maskedFrame(key, `{"type":"ponG"}`), false},
		{"pong with spaces", maskedFrame(key, `{"type": "pong"}`), false},
		{"empty", nil, false},
	}
	for _, tt := range tests {
		if got := isClientPong(tt.in); got != tt.want {
			t.Errorf("%s: isClientPong = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// rawPair is a connected TCP pair: an idleConn over the server end, and
// the client end.
func rawPair(t *testing.T) (*idleConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); srv.Close() })
	ic := &idleConn{Conn: srv}
	if ic.raw, err = srv.(syscall.Conn).SyscallConn(); err != nil {
		t.Fatal(err)
	}
	return ic, client
}

// nextInput takes a whole client pong at the front of the socket and
// nothing else: not a pong that has not fully arrived, not the frame behind
// a pong, not a message.
func TestWaitReadableTakesPongsOnly(t *testing.T) {
	ic, client := rawPair(t)
	pong1 := maskedFrame([4]byte{1, 2, 3, 4}, pongFrame)
	pong2 := maskedFrame([4]byte{9, 8, 7, 6}, pongFrame)
	msg := maskedFrame([4]byte{5, 5, 5, 5}, `{"type":"message","data":1}`)

	mustWrite := func(b []byte) {
		t.Helper()
		if _, err := client.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(want bool) {
		t.Helper()
		pong, _, err := ic.nextInput(true)
		if err != nil || pong != want {
			t.Fatalf("nextInput(wait) = %v, %v; want %v, nil", pong, err, want)
		}
	}
	// readExactly takes want from the socket as the WebSocket reader would.
	readExactly := func(want []byte) {
		t.Helper()
		got := make([]byte, len(want))
		if _, err := io.ReadFull(ic, got); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read %x, %v; want %x", got, err, want)
		}
	}

	// Two pongs and the first half of a third in one segment: both whole
	// pongs are taken, one per call.
	mustWrite(append(append(append([]byte{}, pong1...), pong2...), pong1[:7]...))
	wait(true)
	wait(true)
	// The rest of the third is in the socket for the reader, in order.
	wait(false)
	readExactly(pong1[:7])

	// A message is left whole; so is the pong behind it.
	mustWrite(append(append([]byte{}, msg...), pong2...))
	wait(false)
	readExactly(msg)
	wait(true)

	// The peer's end is an error (the read loop ends the connection).
	client.Close()
	if _, _, err := ic.nextInput(true); err == nil {
		t.Fatal("nextInput(wait) after the peer closed: no error")
	}
}

// A pong the read loop takes itself counts against the inbound rate like
// any frame: a client flooding pongs is closed with 4008, and a message
// behind pongs in the same segment is delivered.
func TestInlinePongs(t *testing.T) {
	h := newHarness(t, Config{InboundRate: 1, InboundBurst: 3, PingInterval: time.Hour})
	pong := maskedFrame([4]byte{0xde, 0xad, 0xbe, 0xef}, pongFrame)

	// Two pongs, then a message, in one write: within the burst of 3.
	polite, _ := h.rawUpgrade("alice", "s1")
	seg := append(append(append([]byte{}, pong...), pong...), maskedFrame([4]byte{1, 1, 1, 1}, `{"type":"message","data":7}`)...)
	if _, err := polite.Write(seg); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the message behind the pongs", func() bool { return h.rec.messagesOf("alice") == 1 })

	// 3 allowed, then floodRefusals refused, then closed.
	flooder, br := h.rawUpgrade("mallory", "s2")
	go answerClose(flooder, br)
	if _, err := flooder.Write(bytes.Repeat(pong, 3+floodRefusals+1)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the pong flooder closed", func() bool {
		_, closes := h.rec.snapshot()
		for _, c := range closes {
			if c.code == CodeRateLimited {
				return true
			}
		}
		return false
	})
	if n := h.m.SessionConns("s1"); n != 1 {
		t.Fatalf("the polite client's connections = %d, want 1", n)
	}
}

// answerClose reads server frames from br until a close frame, and answers
// it with a close of its own, as a client does.
func answerClose(conn net.Conn, br *bufio.Reader) {
	for {
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return
		}
		size := int(h[1] & 0x7F)
		var ext []byte
		switch size {
		case 126:
			ext = make([]byte, 2)
		case 127:
			ext = make([]byte, 8)
		}
		if _, err := io.ReadFull(br, ext); err != nil {
			return
		}
		if ext != nil {
			size = 0
			for _, b := range ext {
				size = size<<8 | int(b)
			}
		}
		payload := make([]byte, size)
		if _, err := io.ReadFull(br, payload); err != nil {
			return
		}
		if h[0]&0x0F == 0x8 {
			reply := append([]byte{0x88, 0x80 | byte(len(payload)), 0, 0, 0, 0}, payload...)
			_, _ = conn.Write(reply)
			return
		}
	}
}

// FuzzIsClientPong: whatever the bytes, isClientPong never panics, and it
// says yes only when a plain frame decoder (RFC 6455 section 5.2, written
// here independently) reads a final, masked, uncompressed text frame
// whose unmasked payload is exactly {"type":"pong"}: the frame the reader
// would have parsed as a pong.
func FuzzIsClientPong(f *testing.F) {
	f.Add(maskedFrame([4]byte{1, 2, 3, 4}, pongFrame))
	f.Add(maskedFrame([4]byte{}, `{"type":"ping"}`))
	f.Add(append(maskedFrame([4]byte{7, 7, 7, 7}, pongFrame), 0x88, 0x80))
	f.Add([]byte{0x81, 0x8f})
	f.Fuzz(func(t *testing.T, b []byte) {
		got := isClientPong(b)
		want := false
		if len(b) >= 2 {
			fin, rsv, op := b[0]&0x80 != 0, b[0]&0x70, b[0]&0x0F
			masked, n := b[1]&0x80 != 0, int(b[1]&0x7F)
			if fin && rsv == 0 && op == 1 && masked && n < 126 && len(b) >= 6+n {
				payload := make([]byte, n)
				for i := range payload {
					payload[i] = b[6+i] ^ b[2+i%4]
				}
				want = string(payload) == pongFrame
			}
		}
		if got != want {
			t.Fatalf("isClientPong(%x) = %v, the decoder says %v", b, got, want)
		}
	})
}
