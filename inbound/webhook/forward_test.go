package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sessiongate/sessiongate/inbound"
)

// TestPostIsSignedJSON checks what the application receives: the
// headers, every field of the message, and a signature it can verify.
func TestPostIsSignedJSON(t *testing.T) {
	srv, reqs := app(t, func(w http.ResponseWriter, _ *http.Request, _ []byte, _ int) { w.WriteHeader(http.StatusNoContent) })
	clock := testClock()
	_, r := newReplier()
	h := newHandler(t, srv.URL+"/inbound", nil, clock, r, time.Minute)
	m := testMsg()
	if err := h(context.Background(), m); err != nil {
		t.Fatalf("handler: %v", err)
	}
	got := <-reqs
	for _, c := range []struct{ header, want string }{
		{"Content-Type", "application/json"},
		{HeaderID, m.ID},
		{HeaderTimestamp, "1700000000"},
	} {
		if v := got.header.Get(c.header); v != c.want {
			t.Errorf("%s = %q, want %q", c.header, v, c.want)
		}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(got.body, &fields); err != nil {
		t.Fatalf("body is not a JSON object: %v", err)
	}
	want := []string{"client_id", "conn_id", "data", "deliveries", "event", "handle", "id", "instance", "received", "system", "user_id"}
	if keys := slices.Sorted(maps.Keys(fields)); !slices.Equal(keys, want) {
		t.Fatalf("body fields = %v, want %v", keys, want)
	}
	var back inbound.Message
	if err := json.Unmarshal(got.body, &back); err != nil {
		t.Fatal(err)
	}
	if !back.Received.Equal(m.Received) || string(back.Data) != string(m.Data) {
		t.Fatalf("received %v data %s, want %v %s", back.Received, back.Data, m.Received, m.Data)
	}
	back.Received, back.Data = m.Received, m.Data
	if !equalMsg(back, *m) {
		t.Fatalf("body decodes to %+v, want %+v", back, *m)
	}

	sig, ts := got.header.Get(HeaderSignature), got.header.Get(HeaderTimestamp)
	if err := VerifySignature([]byte(testSecret), sig, ts, got.body, clock.Now(), 0); err != nil {
		t.Fatalf("the application cannot verify the request: %v", err)
	}
	tampered := bytes.Replace(got.body, []byte("hello"), []byte("hellO"), 1)
	if err := VerifySignature([]byte(testSecret), sig, ts, tampered, clock.Now(), 0); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered body: %v, want ErrBadSignature", err)
	}
	if err := VerifySignature([]byte(testSecret), sig, ts, got.body, clock.Now().Add(10*time.Minute), 0); !errors.Is(err, ErrStaleTimestamp) {
		t.Fatalf("replayed 10 minutes later: %v, want ErrStaleTimestamp", err)
	}

	// The clock moves: the next request is signed with the new time.
	clock.Add(90 * time.Second)
	empty := &inbound.Message{ID: "0-1-0", UserID: "bob", Handle: "hb", Deliveries: 1}
	if err := h(context.Background(), empty); err != nil {
		t.Fatal(err)
	}
	got = <-reqs
	if ts := got.header.Get(HeaderTimestamp); ts != "1700000090" {
		t.Fatalf("timestamp = %s, want 1700000090", ts)
	}
	if err := VerifySignature([]byte(testSecret), got.header.Get(HeaderSignature), "1700000090", got.body, clock.Now(), 0); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(got.body, []byte(`"data":null`)) || !bytes.Contains(got.body, []byte(`"event":""`)) {
		t.Fatalf("a message without data or event: body %s, want data null and event \"\"", got.body)
	}
}

func equalMsg(a, b inbound.Message) bool {
	return a.ID == b.ID && a.ClientID == b.ClientID && a.Event == b.Event && string(a.Data) == string(b.Data) &&
		a.UserID == b.UserID && a.Handle == b.Handle && a.ConnID == b.ConnID && a.Instance == b.Instance &&
		a.Received.Equal(b.Received) && a.Deliveries == b.Deliveries
}

// TestResponses drives every kind of answer: 2xx with or without a reply,
// bodies it cannot use, and the statuses that are retried or not.
func TestResponses(t *testing.T) {
	long := strings.Repeat("x", 10_000)
	tests := []struct {
		name      string
		status    int
		body      string
		kind      string // ok, permanent, retry
		is        error  // the error wraps it
		contains  []string
		reply     string // event of the expected reply; "" none
		replyData string
	}{
		{name: "200 with a reply", status: 200, body: `{"reply":{"event":"chat.ok","data":{"n":1}}}`, kind: "ok", reply: "chat.ok", replyData: `{"n":1}`},
		{name: "201 with a reply and other fields", status: 201, body: `{"ok":true,"reply":{"event":"done","data":null}}`, kind: "ok", reply: "done", replyData: "null"},
		{name: "200 reply without data", status: 200, body: `{"reply":{"event":"done"}}`, kind: "ok", reply: "done", replyData: "null"},
		{name: "200 empty", status: 200, kind: "ok"},
		{name: "204", status: 204, kind: "ok"},
		{name: "200 plain text", status: 200, body: "OK", kind: "ok"},
		{name: "200 JSON without a reply", status: 200, body: `{"ok":true}`, kind: "ok"},
		{name: "200 null reply", status: 200, body: `{"reply":null}`, kind: "ok"},
		{name: "200 broken JSON", status: 200, body: `{"reply":`, kind: "permanent", is: ErrBadResponse, contains: []string{"not valid JSON"}},
		{name: "200 reply without an event", status: 200, body: `{"reply":{"data":{}}}`, kind: "permanent", is: inbound.ErrBadReply},
		{name: "200 reply data not an object", status: 200, body: `{"reply":{"event":"e","data":[1,2]}}`, kind: "permanent", is: inbound.ErrBadReply},
		{name: "400", status: 400, body: `{"error":"unknown command"}`, kind: "permanent", is: ErrStatus, contains: []string{"400", "unknown command"}},
		{name: "401", status: 401, kind: "permanent", is: ErrStatus, contains: []string{"401", "(empty body)"}},
		{name: "404", status: 404, body: "not found", kind: "permanent", is: ErrStatus, contains: []string{"404"}},
		{name: "422 with a long body, clipped", status: 422, body: long, kind: "permanent", is: ErrStatus, contains: []string{"422", `xx"...`}},
		{name: "408", status: 408, kind: "retry", is: ErrStatus, contains: []string{"408"}},
		{name: "429", status: 429, body: "slow down", kind: "retry", is: ErrStatus, contains: []string{"429", "slow down"}},
		{name: "500", status: 500, body: "boom", kind: "retry", is: ErrStatus, contains: []string{"500", "boom"}},
		{name: "503 with a long body, clipped", status: 503, body: long, kind: "retry", is: ErrStatus, contains: []string{"503"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := app(t, func(w http.ResponseWriter, _ *http.Request, _ []byte, _ int) { answer(w, tt.status, tt.body) })
			rec, r := newReplier()
			h := newHandler(t, srv.URL, nil, nil, r, time.Minute)
			m := testMsg()
			err := h(context.Background(), m)
			if k := kind(err); k != tt.kind {
				t.Fatalf("result %s (%v), want %s", k, err, tt.kind)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("error %v does not wrap %v", err, tt.is)
			}
			for _, s := range tt.contains {
				if !strings.Contains(err.Error(), s) {
					t.Fatalf("error %q does not contain %q", err, s)
				}
			}
			if err != nil && len(err.Error()) > 400 {
				t.Fatalf("error is %d bytes: the body is not clipped", len(err.Error()))
			}
			if tt.reply == "" {
				noReply(t, rec)
				return
			}
			got := nextReply(t, rec)
			if got.stream != "user:"+m.UserID || got.ev.Target == nil || got.ev.Target.Handle != m.Handle {
				t.Fatalf("reply went to stream %s target %+v, want user:%s handle %s", got.stream, got.ev.Target, m.UserID, m.Handle)
			}
			if got.ev.Name != tt.reply || string(got.ev.Data) != tt.replyData {
				t.Fatalf("reply %s %s, want %s %s", got.ev.Name, got.ev.Data, tt.reply, tt.replyData)
			}
		})
	}
}

// TestReplyFailureIsRetried: a reply that could not be stored (Redis
// down) fails the message for a retry, and the retry delivers it.
func TestReplyFailureIsRetried(t *testing.T) {
	srv, reqs := app(t, func(w http.ResponseWriter, _ *http.Request, _ []byte, _ int) {
		answer(w, 200, `{"reply":{"event":"pong","data":{}}}`)
	})
	rec, r := newReplier()
	rec.fail = 1
	h := newHandler(t, srv.URL, nil, nil, r, time.Minute)
	err := h(context.Background(), testMsg())
	if kind(err) != "retry" || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("first attempt: %v, want a retryable reply error", err)
	}
	noReply(t, rec)
	if err := h(context.Background(), testMsg()); err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	if got := nextReply(t, rec); got.ev.Name != "pong" {
		t.Fatalf("reply %q, want pong", got.ev.Name)
	}
	if len(reqs) != 2 {
		t.Fatalf("the application got %d requests, want 2", len(reqs))
	}
}

// TestTimeoutIsRetried: an application that does not answer within the
// timeout fails the message for a retry; so does one that cannot be
// reached, and a worker that is stopping.
func TestTimeoutIsRetried(t *testing.T) {
	// stuck is an application that never answers (until the test ends).
	stuck := func(t *testing.T) (string, chan seen) {
		release := make(chan struct{})
		srv, reqs := app(t, func(_ http.ResponseWriter, r *http.Request, _ []byte, _ int) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		})
		t.Cleanup(func() { close(release) }) // runs before srv.Close
		return srv.URL, reqs
	}
	_, rp := newReplier()

	t.Run("timeout", func(t *testing.T) {
		url, _ := stuck(t)
		h := newHandler(t, url, nil, nil, rp, 50*time.Millisecond)
		err := h(context.Background(), testMsg())
		if kind(err) != "retry" || !strings.Contains(err.Error(), "no answer within 50ms") {
			t.Fatalf("handler = %v, want a retryable timeout", err)
		}
	})
	t.Run("caller's context ends", func(t *testing.T) {
		url, reqs := stuck(t)
		h := newHandler(t, url, nil, nil, rp, time.Minute)
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- h(ctx, testMsg()) }()
		<-reqs // the request is at the application
		cancel()
		if err := <-errc; kind(err) != "retry" || !errors.Is(err, context.Canceled) {
			t.Fatalf("handler = %v, want a retryable cancellation", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		gone, _ := app(t, func(http.ResponseWriter, *http.Request, []byte, int) {})
		gone.Close()
		h := newHandler(t, gone.URL+"/in?token=t0k3n", nil, nil, rp, time.Minute)
		err := h(context.Background(), testMsg())
		if kind(err) != "retry" {
			t.Fatalf("handler = %v, want retryable", err)
		}
		if strings.Contains(err.Error(), "t0k3n") {
			t.Fatalf("the error quotes the URL's query: %v", err)
		}
	})
}

// TestRedirectNotFollowed: a 3xx is the answer, never followed, even with
// a client whose policy follows redirects; it goes to the dead letters.
func TestRedirectNotFollowed(t *testing.T) {
	var hits atomic.Int32
	other, _ := app(t, func(w http.ResponseWriter, _ *http.Request, _ []byte, _ int) {
		hits.Add(1)
		answer(w, 200, `{"reply":{"event":"stolen","data":{}}}`)
	})
	for _, status := range []int{301, 302, 307, 308} {
		srv, _ := app(t, func(w http.ResponseWriter, r *http.Request, _ []byte, _ int) {
			http.Redirect(w, r, other.URL, status)
		})
		for name, client := range map[string]*http.Client{"default client": nil, "client that follows": {}} {
			t.Run(http.StatusText(status)+", "+name, func(t *testing.T) {
				rec, r := newReplier()
				h := newHandler(t, srv.URL, client, nil, r, time.Minute)
				err := h(context.Background(), testMsg())
				if kind(err) != "permanent" || !errors.Is(err, ErrStatus) || !strings.Contains(err.Error(), "redirects are not followed") {
					t.Fatalf("handler = %v, want a permanent redirect error", err)
				}
				if n := hits.Load(); n != 0 {
					t.Fatalf("the redirect target got %d requests", n)
				}
				noReply(t, rec)
			})
		}
	}
}

// countingTransport counts the response body bytes the client reads.
type countingTransport struct {
	base http.RoundTripper
	read atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if err == nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.read}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// TestOversizedResponseBounded: a huge answer is read only up to
// MaxResponseBytes (+1 to see it is over): a 2xx goes to the dead
// letters, an error status is retried with its body clipped.
func TestOversizedResponseBounded(t *testing.T) {
	huge := `{"reply":{"event":"e","data":{"pad":"` + strings.Repeat("a", 4<<20) + `"}}}`
	for _, tt := range []struct {
		name   string
		status int
		kind   string
		is     error
	}{
		{name: "200", status: 200, kind: "permanent", is: ErrBadResponse},
		{name: "500", status: 500, kind: "retry", is: ErrStatus},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := app(t, func(w http.ResponseWriter, _ *http.Request, _ []byte, _ int) { answer(w, tt.status, huge) })
			ct := &countingTransport{base: &http.Transport{}}
			client := &http.Client{Transport: ct}
			rec, r := newReplier()
			h := newHandler(t, srv.URL, client, nil, r, time.Minute)
			err := h(context.Background(), testMsg())
			if kind(err) != tt.kind || !errors.Is(err, tt.is) {
				t.Fatalf("handler = %v, want %s wrapping %v", err, tt.kind, tt.is)
			}
			if n := ct.read.Load(); n > MaxResponseBytes+1 {
				t.Fatalf("read %d bytes of the response, more than %d", n, MaxResponseBytes+1)
			}
			if len(err.Error()) > 400 {
				t.Fatalf("error is %d bytes", len(err.Error()))
			}
			noReply(t, rec)
		})
	}
}

// TestNeverLogsSecretOrBody: the forwarder's log lines (debug included)
// carry neither the secret nor the message's or the reply's content.
func TestNeverLogsSecretOrBody(t *testing.T) {
	srv, _ := app(t, func(w http.ResponseWriter, _ *http.Request, _ []byte, _ int) {
		answer(w, 200, `{"reply":{"event":"e","data":{"secret_reply":"r3ply"}}}`)
	})
	core, logs := observer.New(zapcore.DebugLevel)
	_, r := newReplier()
	client := NewClient(time.Minute)
	t.Cleanup(client.CloseIdleConnections)
	h, err := New(Config{URL: srv.URL, Secret: []byte(testSecret)}, r, client, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	if err := h(context.Background(), testMsg()); err != nil {
		t.Fatal(err)
	}
	if logs.Len() == 0 {
		t.Fatal("no log line: the check below would prove nothing")
	}
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	for _, e := range logs.All() {
		buf, err := enc.EncodeEntry(e.Entry, e.Context)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{testSecret, "hello", "r3ply", testMsg().Handle} {
			if strings.Contains(buf.String(), s) {
				t.Fatalf("log line leaks %q: %s", s, buf)
			}
		}
	}
}

// TestNewRefusesBadConfig: New names what is missing and never quotes the
// URL, which may carry credentials.
func TestNewRefusesBadConfig(t *testing.T) {
	_, r := newReplier()
	for _, tt := range []struct {
		name    string
		cfg     Config
		replier inbound.Replier
	}{
		{name: "no URL", cfg: Config{Secret: []byte(testSecret)}, replier: r},
		{name: "not http", cfg: Config{URL: "ftp://user:pa55word@h/x", Secret: []byte(testSecret)}, replier: r},
		{name: "no host", cfg: Config{URL: "https:///x?token=pa55word", Secret: []byte(testSecret)}, replier: r},
		{name: "not a URL", cfg: Config{URL: "http://pa55word@[::1", Secret: []byte(testSecret)}, replier: r},
		{name: "no secret", cfg: Config{URL: "https://app.internal/in"}, replier: r},
		{name: "no replier", cfg: Config{URL: "https://app.internal/in", Secret: []byte(testSecret)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, err := New(tt.cfg, tt.replier, nil, nil)
			if h != nil || !errors.Is(err, ErrConfig) {
				t.Fatalf("New = %v, want ErrConfig", err)
			}
			if strings.Contains(err.Error(), "pa55word") {
				t.Fatalf("error quotes the URL: %v", err)
			}
		})
	}
}
