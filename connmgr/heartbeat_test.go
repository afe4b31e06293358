package connmgr

import (
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The heartbeat runs on a fake clock moved one ping interval at a time, so
// the silence a connection is allowed (interval + pong timeout: 2s of clock
// time) does not depend on how fast the client answers.
func TestHeartbeat(t *testing.T) {
	const interval = time.Second
	tests := []struct {
		name   string
		answer string // sent after every ping; empty: never answer
		alive  bool
	}{
		{name: "missing pong closes", answer: "", alive: false},
		{name: "pong keeps alive", answer: `{"type":"pong"}`, alive: true},
		{name: "any message keeps alive", answer: `{"type":"message","data":{"k":"v"}}`, alive: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, fc := newFakeClockHarness(t, Config{PingInterval: interval, PongTimeout: interval})
			c := h.dial("alice", "s1")
			conn := h.conn(c.welcome.ConnID)
			// 25 pings span 25s of clock time, twelve times the silence allowed.
			for pings := 0; pings < 25; {
				fc.Advance(interval) // the next ping is due (the first comes within one interval)
				f, err := c.read()
				if err != nil {
					status := websocket.CloseStatus(err)
					if tt.alive {
						t.Fatalf("closed after %d pings: %v", pings, err)
					}
					if status != websocket.StatusCode(CodeHeartbeatTimeout) {
						t.Fatalf("close status %d, want %d", status, CodeHeartbeatTimeout)
					}
					if code := h.rec.closeCode(t, c.welcome.ConnID); code != CodeHeartbeatTimeout {
						t.Fatalf("OnClose code %v", code)
					}
					// Pinged at 1s and 2s of silence, closed once it passed 2s.
					if pings != 2 {
						t.Fatalf("closed after %d pings, want 2 (silence allowed: ping interval + pong timeout)", pings)
					}
					return
				}
				if f.Type != "ping" {
					t.Fatalf("unexpected frame %+v", f)
				}
				pings++
				if tt.answer != "" {
					c.write(tt.answer)
					// The answer is read before the clock moves on.
					waitFor(t, "the answer read", func() bool { return conn.lastSeen.Load() == h.m.now() })
				}
			}
			if !tt.alive {
				t.Fatal("silent client survived 25 pings")
			}
			if n := h.m.SendSession("s1", event("still-here")); n != 1 {
				t.Fatalf("SendSession = %d after pings, want 1", n)
			}
			if got := c.eventsUntil("still-here"); len(got) != 0 {
				t.Fatalf("unexpected events %v", got)
			}
		})
	}
}

func TestExpiry(t *testing.T) {
	h := newHarness(t, Config{})
	expiring := h.dial("alice", "s1", "expire_ms", "200")
	other := h.dial("alice", "s2", "expire_ms", "3600000")
	if _, status := expiring.readUntilClose(); status != websocket.StatusCode(CodeExpired) {
		t.Fatalf("close status %d, want %d", status, CodeExpired)
	}
	if code := h.rec.closeCode(t, expiring.welcome.ConnID); code != CodeExpired {
		t.Fatalf("OnClose code %v", code)
	}
	if n := h.m.SendUser("alice", event("e1")); n != 1 {
		t.Fatalf("SendUser = %d, want 1", n)
	}
	if got := other.eventsUntil("e1"); len(got) != 0 {
		t.Fatalf("unexpected events %v", got)
	}
}
