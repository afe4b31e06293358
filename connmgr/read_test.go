package connmgr

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

func TestBadClientInput(t *testing.T) {
	tests := []struct {
		name   string
		typ    websocket.MessageType
		in     string
		want   CloseCode
		config Config
	}{
		{name: "malformed json", typ: websocket.MessageText, in: `{"type":`, want: CodeProtocolError},
		{name: "not an object", typ: websocket.MessageText, in: `["pong"]`, want: CodeProtocolError},
		{name: "unknown type", typ: websocket.MessageText, in: `{"type":"subscribe"}`, want: CodeProtocolError},
		{name: "message without data", typ: websocket.MessageText, in: `{"type":"message"}`, want: CodeProtocolError},
		{name: "binary frame", typ: websocket.MessageBinary, in: `{"type":"pong"}`, want: CodeProtocolError},
		{
			name:   "oversized",
			typ:    websocket.MessageText,
			in:     `{"type":"message","data":"` + strings.Repeat("x", 4096) + `"}`,
			want:   CodeTooBig,
			config: Config{MaxMessageBytes: 1024},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.config)
			bad := h.dial("alice", "s1")
			good := h.dial("alice", "s2")

			ctx, cancel := context.WithTimeout(context.Background(), eventually)
			defer cancel()
			if err := bad.ws.Write(ctx, tt.typ, []byte(tt.in)); err != nil {
				t.Fatalf("write: %v", err)
			}
			if _, status := bad.readUntilClose(); status != websocket.StatusCode(tt.want) {
				t.Fatalf("close status %d, want %d", status, tt.want)
			}
			if code := h.rec.closeCode(t, bad.welcome.ConnID); code != tt.want {
				t.Fatalf("OnClose code %v, want %v", code, tt.want)
			}

			// The user's other connection is unaffected.
			if n := h.m.SendUser("alice", event("e1")); n != 1 {
				t.Fatalf("SendUser = %d, want 1", n)
			}
			if got := good.eventsUntil("e1"); len(got) != 0 {
				t.Fatalf("unexpected events %v", got)
			}
			good.write(`{"type":"message","data":{"still":"ok"}}`)
			waitFor(t, "OnMessage", func() bool {
				h.rec.mu.Lock()
				defer h.rec.mu.Unlock()
				return slices.Contains(h.rec.messages, `alice:{"still":"ok"}`)
			})
		})
	}
}

func TestClientMessagesAndClose(t *testing.T) {
	h := newHarness(t, Config{})
	c := h.dial("alice", "s1")
	c.write(`{"type":"message","data":{"n":1}}`)
	c.write(`{"type":"pong"}`)
	c.write(`{"data":[2],"type":"message"}`)
	if err := c.ws.Close(websocket.StatusNormalClosure, "bye"); err != nil {
		t.Fatalf("client close: %v", err)
	}
	if code := h.rec.closeCode(t, c.welcome.ConnID); code != CodeNormal {
		t.Fatalf("OnClose code %v, want normal", code)
	}
	h.rec.mu.Lock()
	got := slices.Clone(h.rec.messages)
	h.rec.mu.Unlock()
	if want := []string{`alice:{"n":1}`, `alice:[2]`}; !slices.Equal(got, want) {
		t.Fatalf("messages = %v, want %v", got, want)
	}
	if st := h.m.Stats(); st != (Stats{}) {
		t.Fatalf("Stats after close = %+v", st)
	}
}

// A client that announces an oversized frame, sends part of it and goes
// silent is closed with 1009: the close must not wait for the rest of a
// frame that never comes (coder/websocket's close handshake would drain it
// without a bound), and Shutdown is not held up by it.
func TestOversizedFrameThenSilence(t *testing.T) {
	h := newHarness(t, Config{MaxMessageBytes: 1024})
	conn, br := h.rawUpgrade("u", "h")
	// A masked text frame announcing 1 MiB; only 4 KiB of it follow.
	hdr := []byte{0x81, 0x80 | 127, 0, 0, 0, 0, 0, 0x10, 0, 0, 1, 2, 3, 4}
	_, _ = conn.Write(append(hdr, make([]byte, 4096)...))
	go func() { _, _ = io.Copy(io.Discard, br) }()
	waitFor(t, "the oversized connection closed", func() bool {
		_, closes := h.rec.snapshot()
		return len(closes) == 1 && closes[0].code == CodeTooBig
	})
	ctx, cancel := context.WithTimeout(context.Background(), eventually)
	defer cancel()
	if err := h.m.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// The code a client closes with is its own: it is recorded as 1000 (1001
// for going away), never as a server decision such as 4000 or 4500.
func TestClientCloseCodesRecordedAsClientCloses(t *testing.T) {
	tests := []struct {
		name string
		sent websocket.StatusCode
		want CloseCode
	}{
		{"normal", websocket.StatusNormalClosure, CodeNormal},
		{"going away", websocket.StatusGoingAway, CodeGoingAway},
		{"poses as slow consumer", 4000, CodeNormal},
		{"poses as revoked", 4500, CodeNormal},
		{"private code", 4999, CodeNormal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			c := h.dial("alice", "s1")
			_ = c.ws.Close(tc.sent, "client")
			if code := h.rec.closeCode(t, c.welcome.ConnID); code != tc.want {
				t.Fatalf("recorded %v, want %v", code, tc.want)
			}
		})
	}
}

// Client messages are read into a pooled 256-byte buffer and continue on
// the heap past it: messages either side of the boundary, one sent in
// fragments that cross it, and messages after a large one (reusing the
// buffer) all arrive whole and in order.
func TestMessagesAcrossTheReadBuffer(t *testing.T) {
	h := newHarness(t, Config{MaxMessageBytes: 1 << 16})
	c := h.dial("alice", "s1")
	frame := func(n int) (string, string) {
		// {"type":"message","data":"xxx"}: the frame is len(pad)+30 bytes.
		data := `"` + strings.Repeat(string(rune('a'+n%26)), max(n-30, 1)) + `"`
		return `{"type":"message","data":` + data + `}`, data
	}
	var want []string
	for _, n := range []int{10, smallRead - 1, smallRead, smallRead + 1, 2*smallRead + 3, 5000, 20} {
		f, data := frame(n)
		c.write(f)
		want = append(want, "alice:"+data)
	}
	// One message in three frames of 200 bytes: the buffer fills mid-frame.
	f, data := frame(600)
	ctx, cancel := context.WithTimeout(context.Background(), eventually)
	defer cancel()
	w, err := c.ws.Writer(ctx, websocket.MessageText)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(f); i += 200 {
		if _, err := w.Write([]byte(f[i:min(i+200, len(f))])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want = append(want, "alice:"+data)
	c.write(`{"type":"pong"}`)
	f, data = frame(40)
	c.write(f)
	want = append(want, "alice:"+data)
	waitFor(t, "every message", func() bool {
		h.rec.mu.Lock()
		defer h.rec.mu.Unlock()
		return len(h.rec.messages) >= len(want)
	})
	h.rec.mu.Lock()
	got := slices.Clone(h.rec.messages)
	h.rec.mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("messages differ: got %d, want %d", len(got), len(want))
	}
}
