package connmgr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/coder/websocket"
)

// Each cap refuses the connection over it, in Admit and at registration
// (4009 and the cap's error), and nothing else: other users, sessions and
// the connections already open are unaffected, and a closed connection frees
// its slot.
func TestConnectionCaps(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		// open are the user/handle pairs that fill the cap; over is the
		// one refused; others are admitted despite the full cap.
		open   [][2]string
		over   [2]string
		others [][2]string
		want   error
	}{
		{
			name:   "per session",
			cfg:    Config{MaxConnectionsPerSession: 2},
			open:   [][2]string{{"alice", "s1"}, {"alice", "s1"}},
			over:   [2]string{"alice", "s1"},
			others: [][2]string{{"alice", "s2"}, {"bob", "s3"}},
			want:   ErrSessionLimit,
		},
		{
			name:   "per user",
			cfg:    Config{MaxConnectionsPerUser: 2},
			open:   [][2]string{{"alice", "s1"}, {"alice", "s2"}},
			over:   [2]string{"alice", "s3"},
			others: [][2]string{{"bob", "s4"}, {"bob", "s4"}},
			want:   ErrUserLimit,
		},
		{
			name: "per instance",
			cfg:  Config{MaxConnections: 2},
			open: [][2]string{{"alice", "s1"}, {"bob", "s2"}},
			over: [2]string{"carol", "s3"},
			want: ErrInstanceFull,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.cfg)
			var open []*client
			for _, p := range tt.open {
				if err := h.m.Admit(p[0], p[1]); err != nil {
					t.Fatalf("Admit(%s, %s) under the cap = %v", p[0], p[1], err)
				}
				open = append(open, h.dial(p[0], p[1]))
				if err := <-h.serveErrs; err != nil {
					t.Fatalf("Upgrade under the cap = %v", err)
				}
			}
			if err := h.m.Admit(tt.over[0], tt.over[1]); !errors.Is(err, tt.want) {
				t.Fatalf("Admit over the cap = %v, want %v", err, tt.want)
			}
			// Registration enforces the cap by itself (the harness does not
			// call Admit): the connection is closed with 4009.
			c := h.dialRaw(tt.over[0], tt.over[1])
			if _, status := c.readUntilClose(); status != websocket.StatusCode(CodeConnectionLimit) {
				t.Fatalf("over the cap: close %d, want %d", status, CodeConnectionLimit)
			}
			if err := <-h.serveErrs; !errors.Is(err, tt.want) {
				t.Fatalf("Upgrade over the cap = %v, want %v", err, tt.want)
			}
			if opens, _ := h.rec.snapshot(); opens != len(tt.open) {
				t.Fatalf("OnOpen called %d times, want %d: a refused connection was opened", opens, len(tt.open))
			}

			for _, p := range tt.others {
				if err := h.m.Admit(p[0], p[1]); err != nil {
					t.Fatalf("Admit(%s, %s) = %v: another cap's key was refused", p[0], p[1], err)
				}
				h.dial(p[0], p[1])
				if err := <-h.serveErrs; err != nil {
					t.Fatalf("Upgrade(%s, %s) = %v", p[0], p[1], err)
				}
			}
			// The connections under the cap still work.
			if n := h.m.SendAll(event("e1")); n != len(tt.open)+len(tt.others) {
				t.Fatalf("SendAll reached %d connections, want %d", n, len(tt.open)+len(tt.others))
			}
			for _, c := range open {
				if got := c.eventsUntil("e1"); len(got) != 0 {
					t.Fatalf("unexpected events %v", got)
				}
			}

			// A closed connection frees its slot.
			_ = open[0].ws.Close(websocket.StatusNormalClosure, "")
			h.rec.closeCode(t, open[0].welcome.ConnID)
			if err := h.m.Admit(tt.over[0], tt.over[1]); err != nil {
				t.Fatalf("Admit after a close = %v", err)
			}
			h.dial(tt.over[0], tt.over[1])
			if err := <-h.serveErrs; err != nil {
				t.Fatalf("Upgrade after a close = %v", err)
			}
		})
	}
}

// Connections racing for the last slots of a cap: exactly the cap's worth
// are registered, every other one is closed with 4009, and the counts are
// right afterwards.
func TestConnectionCapRace(t *testing.T) {
	const tries, limit = 24, 5
	tests := []struct {
		name string
		cfg  Config
		user func(i int) string
		hand func(i int) string
		want error
	}{
		{
			name: "session",
			cfg:  Config{MaxConnectionsPerSession: limit},
			user: func(i int) string { return "alice" },
			hand: func(i int) string { return "s1" },
			want: ErrSessionLimit,
		},
		{
			name: "user",
			cfg:  Config{MaxConnectionsPerUser: limit},
			user: func(i int) string { return "alice" },
			hand: func(i int) string { return fmt.Sprint("s", i) },
			want: ErrUserLimit,
		},
		{
			name: "instance",
			cfg:  Config{MaxConnections: limit},
			user: func(i int) string { return fmt.Sprint("u", i) },
			hand: func(i int) string { return fmt.Sprint("s", i) },
			want: ErrInstanceFull,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, tt.cfg)
			var wg sync.WaitGroup
			var mu sync.Mutex
			var welcomed, refused int
			for i := range tries {
				wg.Go(func() {
					c := h.dialRaw(tt.user(i), tt.hand(i))
					f, err := c.read()
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil && f.Type == "welcome":
						welcomed++
					case websocket.CloseStatus(err) == websocket.StatusCode(CodeConnectionLimit):
						refused++
					default:
						t.Errorf("first frame %+v, error %v", f, err)
					}
				})
			}
			wg.Wait()
			if welcomed != limit || refused != tries-limit {
				t.Fatalf("welcomed %d, refused %d; want %d and %d", welcomed, refused, limit, tries-limit)
			}
			for range tries {
				if err := <-h.serveErrs; err != nil && !errors.Is(err, tt.want) {
					t.Fatalf("Upgrade = %v, want nil or %v", err, tt.want)
				}
			}
			st := h.m.Stats()
			if st.Connections != limit || int(h.m.reg.count.Load()) != limit {
				t.Fatalf("Stats %+v, count %d; want %d connections", st, h.m.reg.count.Load(), limit)
			}
		})
	}
}

// A client flooding messages is closed with 4008 once its burst is spent,
// while another connection on the instance keeps sending and receiving. The
// limiter runs on a fake clock: no time passes during the flood, so the
// burst is all the flooder gets, however fast the machine.
func TestInboundRateLimit(t *testing.T) {
	const burst = 5
	h, fc := newFakeClockHarness(t, Config{InboundRate: 10, InboundBurst: burst, PingInterval: 1000 * time.Hour})
	flooder := h.dial("mallory", "s1")
	other := h.dial("alice", "s2")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	flooded := make(chan int, 1)
	go func() {
		n := 0
		for ; ; n++ {
			if flooder.ws.Write(ctx, websocket.MessageText, []byte(fmt.Sprintf(`{"type":"message","data":{"n":%d}}`, n))) != nil {
				break
			}
		}
		flooded <- n
	}()
	if _, status := flooder.readUntilClose(); status != websocket.StatusCode(CodeRateLimited) {
		t.Fatalf("flooder saw close %d, want %d", status, CodeRateLimited)
	}
	if code := h.rec.closeCode(t, flooder.welcome.ConnID); code != CodeRateLimited {
		t.Fatalf("OnClose code %v, want rate_limited", code)
	}
	cancel()
	<-flooded
	if got := h.rec.messagesOf("mallory"); got != burst {
		t.Fatalf("%d flood messages delivered, want the burst of %d", got, burst)
	}

	// The other connection is untouched: it receives, and its own messages
	// within its budget are delivered.
	for i := range 3 {
		other.write(fmt.Sprintf(`{"type":"message","data":{"i":%d}}`, i))
	}
	waitFor(t, "the other client's messages", func() bool { return h.rec.messagesOf("alice") == 3 })
	if n := h.m.SendSession("s2", event("e1")); n != 1 {
		t.Fatalf("SendSession = %d, want 1", n)
	}
	if got := other.eventsUntil("e1"); len(got) != 0 {
		t.Fatalf("unexpected events %v", got)
	}

	// A client at the sustained rate is never closed: 50 messages, the
	// clock moving one interval (100ms) after each is read.
	steady := h.dial("bob", "s3")
	for i := range 50 {
		steady.write(fmt.Sprintf(`{"type":"message","data":{"i":%d}}`, i))
		waitFor(t, "the steady client's message", func() bool { return h.rec.messagesOf("bob") == i+1 })
		fc.Advance(100 * time.Millisecond)
	}
	if n := h.m.SessionConns("s3"); n != 1 {
		t.Fatal("a client at the sustained rate was closed")
	}
}

// The limiter's arithmetic: a burst, then one message per interval; time
// refills the budget up to the burst and never beyond.
func TestAllowInbound(t *testing.T) {
	m := New(Config{InboundRate: 4, InboundBurst: 3}, nil, Hooks{})
	c := &conn{}
	const iv = int64(250 * time.Millisecond)
	steps := []struct {
		at   int64
		want bool
	}{
		{0, true}, {0, true}, {0, true}, {0, false}, // the burst of 3
		{iv - 1, false}, {iv, true}, {iv, false}, // one per interval
		{100 * iv, true}, {100 * iv, true}, {100 * iv, true}, {100 * iv, false}, // a long pause refills 3, not 100
	}
	for i, s := range steps {
		if got := m.allowInbound(c, s.at); got != s.want {
			t.Fatalf("step %d at %v: allowed %v, want %v", i, time.Duration(s.at), got, s.want)
		}
	}
	if unlimited := New(Config{}, nil, Hooks{}); !unlimited.allowInbound(&conn{}, 0) || unlimited.inInterval != 0 {
		t.Fatal("the zero Config limits inbound messages")
	}
}

// An idle connection costs what conn costs: the limiter lives in its fields
// and must not push it past the 192-byte size class.
func TestConnSize(t *testing.T) {
	if size := unsafe.Sizeof(conn{}); size > 192 {
		t.Fatalf("conn is %d bytes, over the 192-byte size class: every idle connection pays for it", size)
	}
}

func (r *recorder) messagesOf(user string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(slices.DeleteFunc(slices.Clone(r.messages), func(m string) bool {
		return !strings.HasPrefix(m, user+":")
	}))
}

// A client over its inbound rate gets a rate_limited error naming each
// refused message, and its messages within the rate are acked; only a
// client that keeps sending past floodRefusals refusals is closed (4008).
func TestInboundRateLimitedErrors(t *testing.T) {
	const burst = 3
	h, _ := newFakeClockHarness(t, Config{InboundRate: 1, InboundBurst: burst, PingInterval: 1000 * time.Hour})
	c := h.dial("mallory", "s1")
	var acks, refused []string
	for i := range burst + 2 {
		c.write(fmt.Sprintf(`{"type":"message","id":"m%d","data":{}}`, i))
	}
	for range burst + 2 {
		_, b, err := c.ws.Read(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			Type, ID, Code string
			MsgID          string `json:"msg_id"`
		}
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		switch {
		case f.Type == "ack" && f.MsgID == "q-"+f.ID:
			acks = append(acks, f.ID)
		case f.Type == "error" && f.Code == ErrCodeRateLimited:
			refused = append(refused, f.ID)
		default:
			t.Fatalf("frame %s", b)
		}
	}
	if fmt.Sprint(acks) != "[m0 m1 m2]" || fmt.Sprint(refused) != "[m3 m4]" {
		t.Fatalf("acked %v, refused %v; want the burst acked and the rest refused, in order", acks, refused)
	}
	// Still open: the refusals so far are within floodRefusals.
	if n := h.m.SessionConns("s1"); n != 1 {
		t.Fatalf("connection closed after %d refusals", len(refused))
	}
	for i := range floodRefusals {
		if c.ws.Write(t.Context(), websocket.MessageText, []byte(fmt.Sprintf(`{"type":"message","id":"f%d","data":{}}`, i))) != nil {
			break
		}
	}
	if _, status := c.readUntilClose(); status != websocket.StatusCode(CodeRateLimited) {
		t.Fatalf("flooder saw close %d, want %d", status, CodeRateLimited)
	}
}
