package connmgr

import (
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestHeartbeat(t *testing.T) {
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
			h := newHarness(t, Config{PingInterval: 40 * time.Millisecond, PongTimeout: 60 * time.Millisecond})
			c := h.dial("alice", "s1")
			// 25 pings span ten times the silence allowed (100ms).
			for pings := 0; pings < 25; {
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
					return
				}
				if f.Type != "ping" {
					t.Fatalf("unexpected frame %+v", f)
				}
				pings++
				if tt.answer != "" {
					c.write(tt.answer)
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
