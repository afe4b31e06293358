package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// echoServer accepts a WebSocket, checks the bearer token, writes a welcome,
// a ping frame ({"type":"ping"}), an event, then echoes what it reads until
// it sees "bye", and closes with 4500.
func echoServer(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "no", http.StatusUnauthorized)
			return
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		ctx := context.Background()
		_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"welcome"}`))
		_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"ping"}`))
		big := `{"type":"event","id":"x","event":"e","data":{"t":123,"pad":"` + strings.Repeat("x", 70000) + `"}}`
		_ = c.Write(ctx, websocket.MessageText, []byte(big))
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			if string(b) == "bye" {
				_ = c.Close(4500, "revoked")
				return
			}
			_ = c.Write(ctx, websocket.MessageText, b)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestClientAgainstCoderWebsocket(t *testing.T) {
	srv := echoServer(t)
	addr := strings.TrimPrefix(srv.URL, "http://")
	d := newDialers(5 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := dialWS(ctx, d, addr, "/", "wrong"); !errors.Is(err, errNotUpgraded) {
		t.Fatalf("bad token: err = %v, want errNotUpgraded", err)
	}
	f := newFleet(d, addr, "/")
	rec := newRecorder(10)
	f.rec.Store(rec)
	conns, err := f.open(ctx, []string{"tok"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	c := conns[0]
	if err := f.waitEvents(ctx, 1, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := f.pings.Load(); got != 1 {
		t.Errorf("pings = %d, want 1", got)
	}
	// The pong the reader sent is echoed back; the echo is neither ping nor event.
	if err := c.ws.writeFrame(opText, []byte("bye")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		t.Fatal("no close")
	}
	if got := c.code.Load(); got != 4500 {
		t.Errorf("close code = %d, want 4500", got)
	}
	if got := rec.sorted(); len(got) != 1 {
		t.Errorf("latency samples = %d, want 1", len(got))
	}
	f.closeAll()
}

func TestStampOf(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int64
	}{
		{name: "present", in: `{"type":"event","data":{"t":1700000000123456789,"pad":"x"}}`, want: 1700000000123456789},
		{name: "absent", in: `{"type":"event","data":{}}`, want: 0},
		{name: "not a number", in: `{"t":"x"}`, want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := stampOf([]byte(tt.in)); got != tt.want {
				t.Errorf("stampOf = %d, want %d", got, tt.want)
			}
		})
	}
}
