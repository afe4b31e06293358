package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestResumePath(t *testing.T) {
	tests := []struct {
		name string
		pos  [nStreams]streamPos
		want string
	}{
		{"none", [nStreams]streamPos{}, "/ws"},
		{"both", [nStreams]streamPos{{"ab12", 7}, {"cd", 0}}, "/ws?resume_user=ab12:7&resume_all=cd:0"},
		{"all only", [nStreams]streamPos{{}, {"cd", 3}}, "/ws?resume_all=cd:3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := resumePath(tt.pos); got != tt.want {
				t.Fatalf("resumePath = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestDialWSSendsQuery checks that the resume parameters reach the server
// as a query string through the hand-written client.
func TestDialWSSendsQuery(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Query().Get("resume_user") + " " + r.URL.Query().Get("resume_all")
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		_ = c.Write(r.Context(), websocket.MessageText, []byte(`{"type":"welcome"}`))
		_ = c.Close(websocket.StatusNormalClosure, "")
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, err := dialWS(ctx, newDialers(5*time.Second), strings.TrimPrefix(srv.URL, "http://"),
		resumePath([nStreams]streamPos{{"ab", 4}, {"cd", 9}}), "tok")
	if err != nil {
		t.Fatal(err)
	}
	defer ws.nc.Close()
	if q := <-got; q != "ab:4 cd:9" {
		t.Fatalf("server saw resume_user resume_all = %q, want %q", q, "ab:4 cd:9")
	}
}

func TestStormClientTrack(t *testing.T) {
	var c stormClient
	c.track([]byte(`{"type":"welcome","conn_id":"x","positions":{"user":{"epoch":"e1","offset":4},"all":{"epoch":"e2","offset":9}}}`))
	if c.pos != [nStreams]streamPos{{"e1", 4}, {"e2", 9}} {
		t.Fatalf("after welcome pos = %+v", c.pos)
	}
	if !c.track([]byte(`{"type":"event","id":"a","event":"n","data":{},"stream":"user","epoch":"e1","offset":5}`)) {
		t.Fatal("an event frame is not reported as one")
	}
	c.track([]byte(`{"type":"event","id":"a","event":"n","data":{},"stream":"user","epoch":"e1","offset":3}`)) // older: kept
	c.track([]byte(`{"type":"event","id":"a","event":"n","data":{},"stream":"all","epoch":"e3","offset":1}`))  // new epoch: taken
	if c.pos != [nStreams]streamPos{{"e1", 5}, {"e3", 1}} {
		t.Fatalf("after events pos = %+v", c.pos)
	}
	if c.track([]byte(`{"type":"ping"}`)) {
		t.Fatal("a ping is reported as an event")
	}
}

func ev(stream, epoch string, off int) []byte {
	return []byte(`{"type":"event","id":"a","event":"n","data":{"t":1},"stream":"` + stream + `","epoch":"` + epoch + `","offset":` + strconv.Itoa(off) + `}`)
}

func TestStormClientAccount(t *testing.T) {
	newClient := func() *stormClient {
		c := &stormClient{pos: [nStreams]streamPos{{"eu", 5}, {"ea", 10}}}
		c.expect([nStreams]uint64{7, 11}) // missed: user 6, 7; all 11
		return c
	}
	t.Run("complete in any order", func(t *testing.T) {
		c := newClient()
		if live, _ := c.account([]byte(`{"type":"welcome","recovered":true}`)); live {
			t.Fatal("live before the missed events")
		}
		for _, f := range [][]byte{ev("all", "ea", 11), ev("user", "eu", 7)} {
			if live, _ := c.account(f); live {
				t.Fatal("live with an event missing")
			}
		}
		if live, _ := c.account(ev("user", "eu", 6)); !live {
			t.Fatalf("not live after every missed event: %+v", c)
		}
		if _, barrier := c.account(ev("all", "ea", 12)); !barrier {
			t.Fatal("first broadcast after want is not the barrier")
		}
		c.account(ev("all", "ea", 13))
		if c.replayed != 3 || c.dups != 0 || c.extra != 1 || c.remaining != 0 {
			t.Fatalf("replayed %d dups %d extra %d remaining %d", c.replayed, c.dups, c.extra, c.remaining)
		}
	})
	t.Run("duplicates and wrong epoch", func(t *testing.T) {
		c := newClient()
		c.account([]byte(`{"type":"welcome","recovered":true}`))
		c.account(ev("user", "eu", 6))
		c.account(ev("user", "eu", 6)) // twice
		c.account(ev("user", "eu", 5)) // had it before the kill
		c.account(ev("user", "other", 7))
		if c.dups != 2 || c.wrongEpoch != 1 || c.remaining != 2 {
			t.Fatalf("dups %d wrongEpoch %d remaining %d", c.dups, c.wrongEpoch, c.remaining)
		}
	})
	t.Run("not recovered is never live", func(t *testing.T) {
		c := newClient()
		c.account([]byte(`{"type":"welcome","recovered":false,"lost":["user"]}`))
		for _, f := range [][]byte{ev("user", "eu", 6), ev("user", "eu", 7), ev("all", "ea", 11)} {
			if live, _ := c.account(f); live {
				t.Fatal("live without recovered:true")
			}
		}
	})
}
