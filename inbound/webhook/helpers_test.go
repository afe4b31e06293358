package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/sessiongate/sessiongate/history"
	"github.com/sessiongate/sessiongate/inbound"
	"github.com/sessiongate/sessiongate/internal/fakeclock"
	"github.com/sessiongate/sessiongate/pubsub"
)

const testSecret = "test-webhook-secret-0123456789abcdef"

// waitFor bounds every wait for an event in these tests: generous, so a
// loaded machine is slow, not failing.
const waitFor = 20 * time.Second

// appended is one reply as the replier stored it.
type appended struct {
	stream string
	ev     pubsub.Event
}

// recordingAppender stands in for the history behind a real
// inbound.RedisReplier (the seam the replier publishes through): it
// decodes each reply and records it, and fails the first `fail` calls.
type recordingAppender struct {
	mu   sync.Mutex
	fail int
	got  chan appended
}

func (a *recordingAppender) Append(_ context.Context, stream string, data []byte, _ string) (history.Position, error) {
	a.mu.Lock()
	if a.fail > 0 {
		a.fail--
		a.mu.Unlock()
		return history.Position{}, errors.New("redis: connection refused")
	}
	a.mu.Unlock()
	ev, err := pubsub.Decode(data)
	if err != nil {
		return history.Position{}, err
	}
	a.got <- appended{stream: stream, ev: ev}
	return history.Position{Epoch: "e1", Offset: 1}, nil
}

// newReplier is a real RedisReplier over a recordingAppender.
func newReplier() (*recordingAppender, inbound.Replier) {
	a := &recordingAppender{got: make(chan appended, 64)}
	return a, inbound.RedisReplier{History: a}
}

// nextReply waits for the next reply.
func nextReply(t *testing.T, a *recordingAppender) appended {
	t.Helper()
	select {
	case r := <-a.got:
		return r
	case <-time.After(waitFor):
		t.Fatal("timed out waiting for a reply")
		return appended{}
	}
}

// noReply fails if a reply was recorded. Replies are delivered before the
// handler returns, so after it returned there is nothing to wait for.
func noReply(t *testing.T, a *recordingAppender) {
	t.Helper()
	select {
	case r := <-a.got:
		t.Fatalf("unexpected reply %q to %s", r.ev.Name, r.stream)
	default:
	}
}

// seen is one request the application received.
type seen struct {
	header http.Header
	body   []byte
}

// app is an httptest server standing for the application: respond answers
// each request (n counts them from 1); every request is recorded.
func app(t *testing.T, respond func(w http.ResponseWriter, r *http.Request, body []byte, n int)) (*httptest.Server, chan seen) {
	t.Helper()
	reqs := make(chan seen, 64)
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		n++
		k := n
		mu.Unlock()
		reqs <- seen{header: r.Header.Clone(), body: body}
		respond(w, r, body, k)
	}))
	t.Cleanup(srv.Close)
	return srv, reqs
}

// answer writes status and body (JSON content type when the body is
// JSON-like).
func answer(w http.ResponseWriter, status int, body string) {
	if body != "" && body[0] == '{' {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// testClock is the fake clock of the forwarders in these tests.
func testClock() *fakeclock.Clock { return fakeclock.New(time.Unix(1_700_000_000, 0)) }

// newHandler builds a forwarder to url with the test secret, the given
// client (nil: NewClient, closed at the end), clock and replier.
func newHandler(t *testing.T, url string, client *http.Client, clock *fakeclock.Clock, r inbound.Replier, timeout time.Duration) inbound.Handler {
	t.Helper()
	if client == nil {
		client = NewClient(timeout)
	}
	t.Cleanup(client.CloseIdleConnections)
	cfg := Config{URL: url, Secret: []byte(testSecret), Timeout: timeout}
	if clock != nil {
		cfg.Now = clock.Now
	}
	h, err := New(cfg, r, client, zaptest.NewLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return h
}

// testMsg is a message as a worker hands it over.
func testMsg() *inbound.Message {
	return &inbound.Message{ID: "3-1700000000000-0", ClientID: "c-7", Event: "chat",
		Data: json.RawMessage(`{"text":"hello"}`), UserID: "alice",
		Handle: "h0123456789abcdef0123456789abcdef", ConnID: "conn-1", Instance: "gw-1",
		Received: time.Date(2025, 11, 29, 10, 0, 0, 123_000_000, time.UTC), Deliveries: 2}
}

// kind classifies a handler's result as the worker will.
func kind(err error) string {
	switch {
	case err == nil:
		return "ok"
	case inbound.IsPermanent(err):
		return "permanent"
	default:
		return "retry"
	}
}
