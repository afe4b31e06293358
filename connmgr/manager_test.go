package connmgr

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestWelcomeIsFirst(t *testing.T) {
	h := newHarness(t, Config{InstanceID: "gw-1", PingInterval: 30 * time.Second, SendQueue: 1 << 20})

	// A busy fan-out while the client connects must not get ahead of the welcome.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			h.m.SendAll(event(fmt.Sprint("spam-", i)))
			time.Sleep(100 * time.Microsecond)
		}
	})
	defer wg.Wait()
	defer close(stop)

	c := h.dialRaw("alice", "s1", "id", "conn-1")
	w := c.mustRead()
	if w.Type != "welcome" || w.ConnID != "conn-1" || w.UserID != "alice" || w.Instance != "gw-1" || w.PingIntervalMS != 30000 {
		t.Fatalf("welcome = %+v", w)
	}
	if f := c.mustRead(); f.Type != "event" {
		t.Fatalf("second frame = %+v, want an event", f)
	}

	// Without an id the manager makes one.
	c2 := h.dial("bob", "s2")
	if c2.welcome.ConnID == "" {
		t.Fatal("generated conn id is empty")
	}
}

func TestFanOutRouting(t *testing.T) {
	h := newHarness(t, Config{})
	clients := map[string]*client{
		"a1":  h.dial("alice", "s1"),
		"a1b": h.dial("alice", "s1"),
		"a2":  h.dial("alice", "s2"),
		"b1":  h.dial("bob", "s3"),
	}
	if got, want := h.m.Stats(), (Stats{Connections: 4, Sessions: 3, Users: 2}); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
	if n := h.m.SessionConns("s1"); n != 2 {
		t.Fatalf("SessionConns(s1) = %d, want 2", n)
	}
	sessions := h.m.Sessions()
	slices.SortFunc(sessions, func(a, b SessionRef) int { return strings.Compare(a.Handle, b.Handle) })
	if len(sessions) != 3 || sessions[0] != (SessionRef{Handle: "s1", Conns: 2}) || sessions[2] != (SessionRef{Handle: "s3", Conns: 1}) {
		t.Fatalf("Sessions = %+v", sessions)
	}

	sends := []struct {
		name string
		send func() int
		want int
	}{
		{name: "session s1", send: func() int { return h.m.SendSession("s1", event("e1")) }, want: 2},
		{name: "user alice", send: func() int { return h.m.SendUser("alice", event("e2")) }, want: 3},
		{name: "user bob", send: func() int { return h.m.SendUser("bob", event("e3")) }, want: 1},
		{name: "unknown session", send: func() int { return h.m.SendSession("nope", event("e4")) }, want: 0},
		{name: "empty user", send: func() int { return h.m.SendUser("", event("e5")) }, want: 0},
		{name: "all", send: func() int { return h.m.SendAll(event("e6")) }, want: 4},
	}
	for _, s := range sends {
		if got := s.send(); got != s.want {
			t.Errorf("%s: queued on %d connections, want %d", s.name, got, s.want)
		}
	}
	h.m.SendAll(event("end"))

	want := map[string][]string{
		"a1":  {"e1", "e2", "e6"},
		"a1b": {"e1", "e2", "e6"},
		"a2":  {"e2", "e6"},
		"b1":  {"e3", "e6"},
	}
	for name, c := range clients {
		if got := c.eventsUntil("end"); !slices.Equal(got, want[name]) {
			t.Errorf("%s received %v, want %v", name, got, want[name])
		}
	}
}

func TestCloseTargets(t *testing.T) {
	tests := []struct {
		name       string
		close      func(m *Manager) int
		wantClosed []string
		wantCode   CloseCode
	}{
		{
			name:       "session revoked",
			close:      func(m *Manager) int { return m.CloseSession("s1", CodeRevoked) },
			wantClosed: []string{"a1", "a1b"},
			wantCode:   CodeRevoked,
		},
		{
			name:       "user unauthorized",
			close:      func(m *Manager) int { return m.CloseUser("alice", CodeUnauthorized) },
			wantClosed: []string{"a1", "a1b", "a2"},
			wantCode:   CodeUnauthorized,
		},
		{
			name:     "unknown session",
			close:    func(m *Manager) int { return m.CloseSession("nope", CodeRevoked) },
			wantCode: CodeRevoked,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			clients := map[string]*client{
				"a1":  h.dial("alice", "s1"),
				"a1b": h.dial("alice", "s1"),
				"a2":  h.dial("alice", "s2"),
				"b1":  h.dial("bob", "s3"),
			}
			if n := tt.close(h.m); n != len(tt.wantClosed) {
				t.Fatalf("closed %d connections, want %d", n, len(tt.wantClosed))
			}
			for name, c := range clients {
				if !slices.Contains(tt.wantClosed, name) {
					continue
				}
				if _, status := c.readUntilClose(); status != websocket.StatusCode(tt.wantCode) {
					t.Errorf("%s: client saw close %d, want %d", name, status, tt.wantCode)
				}
				if code := h.rec.closeCode(t, c.welcome.ConnID); code != tt.wantCode {
					t.Errorf("%s: OnClose code %v, want %v", name, code, tt.wantCode)
				}
			}
			// The others are untouched.
			h.m.SendAll(event("after"))
			for name, c := range clients {
				if slices.Contains(tt.wantClosed, name) {
					continue
				}
				if got := c.eventsUntil("after"); len(got) != 0 {
					t.Errorf("%s: unexpected events %v", name, got)
				}
			}
			if got := h.m.Stats().Connections; got != 4-len(tt.wantClosed) {
				t.Errorf("Connections = %d, want %d", got, 4-len(tt.wantClosed))
			}
		})
	}
}

func TestSlowConsumer(t *testing.T) {
	h := newHarness(t, Config{SendQueue: 16, WriteTimeout: eventually, PingInterval: time.Hour})
	fast := h.dial("fast", "f")
	slow := h.dial("slow", "s")

	received := make(chan string, 64)
	go func() {
		defer close(received)
		for {
			f, err := fast.read()
			if err != nil {
				return
			}
			if f.Type == "event" {
				received <- f.ID
			}
		}
	}()

	payload := `{"blob":"` + strings.Repeat("x", 16<<10) + `"}`
	var want, got []string
	// Each batch is under the queue bound, and the next one starts only once
	// the fast client has read it: only the client that never reads overflows.
	for batch := 0; batch < 5000 && h.m.SessionConns("s") == 1; batch++ {
		for i := range 8 {
			id := fmt.Sprintf("b%d-%d", batch, i)
			h.m.SendAll(EncodeEvent(id, "flood", []byte(payload)))
			want = append(want, id)
		}
		for range 8 {
			select {
			case id := <-received:
				got = append(got, id)
			case <-time.After(eventually):
				t.Fatal("fast client stopped receiving")
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("fast client received %d events out of order or with gaps (want %d)", len(got), len(want))
	}
	if n := h.m.SessionConns("s"); n != 0 {
		t.Fatalf("slow consumer still registered after %d frames", len(want))
	}
	if n := h.m.SessionConns("f"); n != 1 {
		t.Fatalf("fast client was closed")
	}
	if _, status := slow.readUntilClose(); status != websocket.StatusCode(CodeSlowConsumer) {
		t.Fatalf("slow client saw close %d, want %d", status, CodeSlowConsumer)
	}
	if code := h.rec.closeCode(t, slow.welcome.ConnID); code != CodeSlowConsumer {
		t.Fatalf("OnClose code %v, want slow_consumer", code)
	}
	if h.rec.dropped.Load() == 0 {
		t.Fatal("no dropped frames reported")
	}
}

func TestDuplicateConnID(t *testing.T) {
	h := newHarness(t, Config{})
	first := h.dial("alice", "s1", "id", "same")
	// The first Upgrade reported success at once.
	if err := <-h.serveErrs; err != nil {
		t.Fatalf("first Upgrade = %v", err)
	}
	second := h.dialRaw("alice", "s2", "id", "same")
	if _, status := second.readUntilClose(); status != websocket.StatusCode(CodeInternal) {
		t.Fatalf("duplicate saw close %d, want %d", status, CodeInternal)
	}
	select {
	case err := <-h.serveErrs:
		if !errors.Is(err, ErrDuplicateID) {
			t.Fatalf("Serve = %v, want ErrDuplicateID", err)
		}
	case <-time.After(eventually):
		t.Fatal("Serve did not return")
	}
	if n := h.m.SendSession("s1", event("e1")); n != 1 {
		t.Fatalf("SendSession = %d, want 1", n)
	}
	if got := first.eventsUntil("e1"); len(got) != 0 {
		t.Fatalf("unexpected events %v", got)
	}
	if st := h.m.Stats(); st != (Stats{Connections: 1, Sessions: 1, Users: 1}) {
		t.Fatalf("Stats = %+v", st)
	}
}

// Start returns as soon as the welcome is written; the read loop lives on in
// its own goroutine, serves the connection and is waited for by Shutdown.
func TestStartDetachesReadLoop(t *testing.T) {
	h := newHarness(t, Config{})
	c := h.dialRaw("alice", "s1", "start", "1")
	if w := c.mustRead(); w.Type != "welcome" {
		t.Fatalf("first frame %+v", w)
	}
	select {
	case err := <-h.serveErrs:
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
	case <-time.After(eventually):
		t.Fatal("Start did not return while the connection is open")
	}
	if n := h.m.SendSession("s1", event("e1")); n != 1 {
		t.Fatalf("SendSession reached %d", n)
	}
	if f := c.mustRead(); f.Type != "event" || f.ID != "e1" {
		t.Fatalf("got %+v", f)
	}
	c.write(`{"type":"nonsense"}`)
	if _, code := c.readUntilClose(); code != websocket.StatusCode(CodeProtocolError) {
		t.Fatalf("close %d, want 4503 from the detached read loop", code)
	}
	waitFor(t, "unregistered", func() bool { return h.m.Stats().Connections == 0 })
}

// A flush run that lasts far longer than WriteTimeout, to a reader that
// keeps up, is never cut: the write deadline is renewed as the run goes on.
// Time is a fake clock that moves 300ms after every frame written, between
// two writes of the run, so 2000 frames take 10 minutes of clock time
// against a 1s write timeout whatever the machine's speed; a deadline taken
// once per run would expire on the fourth frame.
func TestLongFlushRunNotCut(t *testing.T) {
	const (
		n       = 2000
		timeout = time.Second
		step    = 300 * time.Millisecond
	)
	h, fc := newFakeClockHarness(t, Config{
		WriteTimeout: timeout,
		SendQueue:    n,
		// No ping, no heartbeat timeout in the ten minutes the run takes.
		PingInterval: 1000 * time.Hour,
		PongTimeout:  1000 * time.Hour,
	})
	c := h.dial("alice", "s1")

	// The first write of the run waits until every frame is queued, so that
	// all of them go out in this one run.
	queued := make(chan struct{})
	var first sync.Once
	after := func() {
		first.Do(func() { <-queued })
		fc.Advance(step)
	}
	h.rec.afterSent.Store(&after)
	start := fc.Now()

	got := make(chan int, 1)
	go func() {
		count := 0
		for count < n {
			f, err := c.read()
			if err != nil {
				break
			}
			if f.Type == "event" {
				count++
			}
		}
		got <- count
	}()
	for i := range n {
		if h.m.SendSession("s1", event(fmt.Sprint("e", i))) != 1 {
			t.Fatalf("send %d refused", i)
		}
	}
	close(queued)
	if count := <-got; count != n {
		t.Fatalf("received %d of %d frames", count, n)
	}
	if d := fc.Now().Sub(start); d < 100*timeout {
		t.Fatalf("the run took %v of clock time; the test means to exceed the write timeout many times over", d)
	}
	if code := h.m.SessionConns("s1"); code != 1 {
		t.Fatal("the connection was closed")
	}
}
