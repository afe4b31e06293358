package connmgr

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// Frames written from enqueue (idleConn.tryWriteText) while the client does
// not read fill the socket: some are taken only in part, and the flush that
// takes over writes the rest first. When the client reads again every frame
// arrives whole, in order.
func TestDirectWritesPartialFramesArriveWhole(t *testing.T) {
	const n = 400
	h := newHarness(t, Config{SendQueue: n + 1, WriteTimeout: eventually, PingInterval: time.Hour})
	c := h.dial("alice", "s1")
	blob := strings.Repeat("x", 32<<10)
	for i := range n {
		if h.m.SendSession("s1", EncodeEvent(fmt.Sprint("e", i), "big", []byte(`{"b":"`+blob+`"}`))) != 1 {
			t.Fatalf("send %d refused", i)
		}
	}
	if h.m.owedWrites.Load() == 0 {
		t.Fatal("no direct write was taken in part: the frames did not fill the socket, the test proves nothing")
	}
	for i := range n {
		f, err := c.read()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.Type != "event" || f.ID != fmt.Sprint("e", i) {
			t.Fatalf("frame %d: type %q id %q", i, f.Type, f.ID)
		}
	}
	if h.m.SessionConns("s1") != 1 {
		t.Fatal("the connection was closed")
	}
}

// A client that stops reading, with a queue too large to overflow, is
// closed with 4000 when a write blocks past WriteTimeout: the flush's
// socket write deadline (writeDeadline on an upgraded connection).
func TestWriteTimeoutOnSocketDeadline(t *testing.T) {
	h := newHarness(t, Config{SendQueue: 100000, WriteTimeout: 300 * time.Millisecond, PingInterval: time.Hour})
	c := h.dial("alice", "s1")
	frame := EncodeEvent("e", "big", []byte(`{"b":"`+strings.Repeat("y", 32<<10)+`"}`))
	// Fewer frames than SendQueue in all: the close cannot be the queue's.
	for i := 0; h.m.SessionConns("s1") == 1; i++ {
		if i == 50000 {
			t.Fatal("50000 frames of 32 KiB to a client that does not read and the connection is still open")
		}
		h.m.SendSession("s1", frame)
		if i%100 == 99 {
			time.Sleep(10 * time.Millisecond) // pace: the flush blocks on the full socket meanwhile
		}
	}
	if code := h.rec.closeCode(t, c.welcome.ConnID); code != CodeSlowConsumer {
		t.Fatalf("OnClose code %v, want slow_consumer (4000)", code)
	}
}

// appendTextFrame's header at each length boundary of RFC 6455 section 5.2.
func TestAppendTextFrameHeader(t *testing.T) {
	for _, tc := range []struct {
		n    int
		head []byte
	}{
		{0, []byte{0x81, 0}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{65535, []byte{0x81, 126, 0xff, 0xff}},
		{65536, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	} {
		p := []byte(strings.Repeat("z", tc.n))
		b := appendTextFrame([]byte("pre"), p)
		if got := b[3 : 3+len(tc.head)]; string(got) != string(tc.head) {
			t.Errorf("length %d: header % x, want % x", tc.n, got, tc.head)
		}
		if string(b[:3]) != "pre" || string(b[3+len(tc.head):]) != string(p) || len(b) != 3+len(tc.head)+tc.n {
			t.Errorf("length %d: frame not prefix + header + payload", tc.n)
		}
	}
}
