package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/sessiongate/sessiongate/inbound"
)

// TestWorkerEndToEnd runs a real inbound.Worker on the memory queue with
// the forwarder as its handler: queued messages are POSTed, replies reach
// their senders, a 500 is retried until the 200 and acked, a 400 goes to
// the dead letters with the status in its error.
func TestWorkerEndToEnd(t *testing.T) {
	var mu sync.Mutex
	deliveries := map[string][]int{} // message id -> the deliveries the app saw
	srv, _ := app(t, func(w http.ResponseWriter, _ *http.Request, body []byte, _ int) {
		var p inbound.Message
		if err := json.Unmarshal(body, &p); err != nil {
			answer(w, 400, "not a message")
			return
		}
		mu.Lock()
		deliveries[p.ID] = append(deliveries[p.ID], p.Deliveries)
		tries := len(deliveries[p.ID])
		mu.Unlock()
		var in struct{ Text string }
		_ = json.Unmarshal(p.Data, &in)
		switch p.Event {
		case "echo":
			out, _ := json.Marshal(map[string]any{"reply": map[string]any{"event": "echo", "data": map[string]string{"text": in.Text, "user": p.UserID}}})
			answer(w, 200, string(out))
		case "flaky":
			if tries == 1 {
				answer(w, 500, "database busy")
				return
			}
			answer(w, 200, `{"reply":{"event":"flaky.ok","data":{"tries":2}}}`)
		default:
			answer(w, 400, "unknown command "+p.Event)
		}
	})
	rec, replier := newReplier()
	q := inbound.NewMemory(inbound.Config{Partitions: 4, VisibilityTimeout: time.Minute, MaxDeliveries: 3}, inbound.MemoryOptions{})
	h := newHandler(t, srv.URL, nil, nil, replier, time.Minute)
	w := inbound.Worker{Consumer: q, Name: "webhook-test", Default: h, Concurrency: 2,
		Block: 20 * time.Millisecond, BackoffMin: time.Millisecond, BackoffMax: 5 * time.Millisecond,
		Log: zaptest.NewLogger(t)}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	enqueue := func(user, event, text string) string {
		t.Helper()
		id, err := q.Enqueue(context.Background(), inbound.Message{Event: event, Data: json.RawMessage(`{"text":"` + text + `"}`),
			UserID: user, Handle: "h-" + user, ConnID: "c-" + user, Instance: "gw-1", Received: time.Now()})
		if err != nil {
			t.Fatalf("enqueue: %v", err)
		}
		return id
	}
	echoID := enqueue("alice", "echo", "hi")
	flakyID := enqueue("bob", "flaky", "again")
	badID := enqueue("carol", "nope", "x")

	replies := map[string]appended{}
	for range 2 {
		r := nextReply(t, rec)
		replies[r.ev.Name] = r
	}
	if r := replies["echo"]; r.stream != "user:alice" || r.ev.Target.Handle != "h-alice" || string(r.ev.Data) != `{"text":"hi","user":"alice"}` {
		t.Fatalf("echo reply: %s %+v %s", r.stream, r.ev.Target, r.ev.Data)
	}
	if r := replies["flaky.ok"]; r.stream != "user:bob" || r.ev.Target.Handle != "h-bob" {
		t.Fatalf("flaky reply: %s %+v", r.stream, r.ev.Target)
	}

	deadline := time.Now().Add(waitFor)
	var st inbound.Stats
	for {
		var err error
		if st, err = q.Stats(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st.Length == 0 && st.Dead == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not drained: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	dead, err := q.DeadLetters(context.Background(), "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].Message.ID != badID || dead[0].Deliveries != 1 ||
		!strings.Contains(dead[0].Error, "400") || !strings.Contains(dead[0].Error, "unknown command nope") {
		t.Fatalf("dead letters = %+v, want %s once, with the 400 and its body", dead, badID)
	}
	mu.Lock()
	defer mu.Unlock()
	for id, want := range map[string]string{echoID: "[1]", flakyID: "[1 2]", badID: "[1]"} {
		if got := fmt.Sprint(deliveries[id]); got != want {
			t.Errorf("message %s: the application saw deliveries %s, want %s", id, got, want)
		}
	}
	noReply(t, rec)
}
