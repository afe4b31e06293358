package connmgr

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
)

// TestIdleConnectionsHoldNoGoroutine: upgraded connections waiting for
// input hold no goroutine; each still gets its messages handled, its
// client's disconnect seen and the server's close finished (Shutdown, at
// cleanup, fails if a connection's end never ran).
func TestIdleConnectionsHoldNoGoroutine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the poller is Linux's (epoll); elsewhere each connection keeps a goroutine")
	}
	const n = 40
	h := newHarness(t, Config{})
	base := runtime.NumGoroutine()
	type rawClient struct {
		conn net.Conn
		br   *bufio.Reader
	}
	clients := make([]rawClient, n)
	for i := range clients {
		conn, br := h.rawUpgrade(fmt.Sprintf("u%02d", i), fmt.Sprintf("s%02d", i))
		readServerFrame(t, br) // the welcome: registered
		clients[i] = rawClient{conn, br}
	}
	idle := func() bool { return runtime.NumGoroutine()-base < n/4 }
	waitFor(t, "idle connections to give up their goroutines", idle)

	// Woken by input: every message is handled, then the goroutines go.
	for i, c := range clients {
		if _, err := c.conn.Write(maskedText(fmt.Sprintf(`{"type":"message","data":{"n":%d}}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range clients {
		user := fmt.Sprintf("u%02d", i)
		waitFor(t, "the message of "+user, func() bool { return h.rec.messagesOf(user) == 1 })
	}
	waitFor(t, "woken connections to give up their goroutines again", idle)

	// A client that goes away while its connection waits: the connection
	// ends (abnormally: no close frame).
	for _, c := range clients[:n/2] {
		_ = c.conn.Close()
	}
	waitFor(t, "the disconnected half to end", func() bool {
		_, closes := h.rec.snapshot()
		return h.m.Stats().Connections == n/2 && len(closes) == n/2
	})

	// The server closes the rest while they wait: each gets its close
	// frame, and its end runs though no read was pending.
	if got := h.m.CloseAll(CodeGoingAway); got != n/2 {
		t.Fatalf("CloseAll closed %d, want %d", got, n/2)
	}
	for _, c := range clients[n/2:] {
		op, payload := readRawFrame(t, c.br)
		if op != 0x8 || len(payload) < 2 || CloseCode(int(payload[0])<<8|int(payload[1])) != CodeGoingAway {
			t.Fatalf("got opcode %#x payload %q, want a close frame with %d", op, payload, CodeGoingAway)
		}
		_ = c.conn.Close()
	}
	waitFor(t, "every connection to end", func() bool {
		_, closes := h.rec.snapshot()
		return h.m.Stats().Connections == 0 && len(closes) == n
	})
	_, closes := h.rec.snapshot()
	for _, ev := range closes {
		var i int
		if _, err := fmt.Sscanf(ev.info.UserID, "u%d", &i); err != nil {
			t.Fatal(err)
		}
		want := CodeGoingAway
		if i < n/2 {
			want = CodeAbnormal
		}
		if ev.code != want {
			t.Errorf("%s closed with %d, want %d", ev.info.UserID, ev.code, want)
		}
	}
}

// TestUpgradeWithoutPoller: on a manager with no poller (systems without
// epoll) an upgraded connection reads on a goroutine of its own, and is
// served and closed as with one.
func TestUpgradeWithoutPoller(t *testing.T) {
	h := newHarness(t, Config{})
	h.m.noPoller = true
	cl := h.dial("alice", "s1")
	c := h.conn(cl.welcome.ConnID)
	if c == nil || c.idle == nil || c.idle.poll != nil {
		t.Fatal("want an upgraded connection that reads on a goroutine of its own")
	}
	cl.write(`{"type":"message","data":{"n":1}}`)
	cl.write(`{"type":"message","data":{"n":2}}`)
	waitFor(t, "both messages", func() bool { return h.rec.messagesOf("alice") == 2 })
	if got := h.m.CloseUser("alice", CodeGoingAway); got != 1 {
		t.Fatalf("CloseUser closed %d, want 1", got)
	}
	if _, status := cl.readUntilClose(); CloseCode(status) != CodeGoingAway {
		t.Fatalf("closed with %d, want %d", status, CodeGoingAway)
	}
	if code := h.rec.closeCode(t, cl.welcome.ConnID); code != CodeGoingAway {
		t.Fatalf("OnClose code %d, want %d", code, CodeGoingAway)
	}
}

// readServerFrame reads one unmasked server frame and returns its payload.
func readServerFrame(t *testing.T, br *bufio.Reader) []byte {
	t.Helper()
	_, p := readRawFrame(t, br)
	return p
}

// readRawFrame reads one unmasked server frame (payload under 64 KiB).
func readRawFrame(t *testing.T, br *bufio.Reader) (op byte, payload []byte) {
	t.Helper()
	var hdr [2]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		t.Fatalf("read frame header: %v", err)
	}
	n := int(hdr[1] & 0x7f)
	if n == 126 {
		var ext [2]byte
		if _, err := io.ReadFull(br, ext[:]); err != nil {
			t.Fatal(err)
		}
		n = int(ext[0])<<8 | int(ext[1])
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(br, payload); err != nil {
		t.Fatalf("read frame payload: %v", err)
	}
	return hdr[0] & 0x0f, payload
}
