package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sessiongate/sessiongate/internal/redistest"
	"github.com/sessiongate/sessiongate/redisconn"
)

// startInstances starts n in-process gateways on one real redis-server, each
// with its own Redis client, as separate instances would have.
func startInstances(t *testing.T, srv *redistest.Server, n int, env map[string]string) []*testGateway {
	t.Helper()
	var out []*testGateway
	for i := 0; i < n; i++ {
		e := map[string]string{"GATEWAY_INSTANCE_ID": "inst-" + string(rune('a'+i))}
		for k, v := range env {
			e[k] = v
		}
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: 1, MinRetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond})
		t.Cleanup(func() { rdb.Close() })
		out = append(out, startGateway(t, gwOptions{env: e, rdb: rdb}))
	}
	// Wait until every instance sees the others' heartbeats, i.e. all are subscribed.
	waitFor(t, 10*time.Second, "instances see each other", func() bool {
		for _, g := range out {
			if len(g.srv.cluster.View()) < n {
				return false
			}
		}
		return true
	})
	return out
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestThreeInstancesRevocationAndMessages(t *testing.T) {
	srv := redistest.Start(t)
	gs := startInstances(t, srv, 3, nil)
	a, b, c := gs[0], gs[1], gs[2]

	// Login on A; the same cookie opens sockets on B and C.
	hc := a.client()
	resp := a.login(hc, "alice")
	var token string
	for _, ck := range resp.Cookies() {
		if ck.Name == a.cfg.EffectiveCookieName() {
			token = ck.Value
		}
	}
	onB, onC := b.dialToken(token), c.dialToken(token)
	if w := onB.mustNext("welcome"); w.Instance != "inst-b" {
		t.Fatalf("welcome on B names %q", w.Instance)
	}
	onC.mustNext("welcome")

	// Publish to the user via A: each connection gets it exactly once.
	st, body := a.api("POST", "/api/v1/publish", map[string]any{"target": map[string]any{"user_id": "alice"}, "event": "hello", "data": map[string]int{"n": 7}})
	if st != 202 || !strings.Contains(string(body), `"delivered_local":0`) {
		t.Fatalf("publish via A: %d %s", st, body)
	}
	// A second, different event follows: had "hello" been delivered twice,
	// the duplicate would come before it.
	if st, body := a.api("POST", "/api/v1/publish", map[string]any{"target": map[string]any{"user_id": "alice"}, "event": "marker"}); st != 202 {
		t.Fatalf("publish marker: %d %s", st, body)
	}
	for _, w := range []*wsConn{onB, onC} {
		if ev := w.mustNext("event"); ev.Event != "hello" {
			t.Fatalf("got %+v", ev)
		}
		if ev := w.mustNext("event"); ev.Event != "marker" {
			t.Fatalf("duplicate delivery: got %+v, want the marker", ev)
		}
	}

	// Logout on A closes both with 4500.
	req, _ := http.NewRequest("POST", a.http.URL+"/auth/logout", nil)
	lr, err := hc.Do(req)
	if err != nil || lr.StatusCode != 204 {
		t.Fatalf("logout: %v %v", err, lr)
	}
	lr.Body.Close()
	for _, w := range []*wsConn{onB, onC} {
		if code := w.closeCode(5 * time.Second); code != 4500 {
			t.Fatalf("close code %d, want 4500", code)
		}
	}

	// Revoke-user through C closes all of bob's connections on A and B.
	t1, _ := c.createSession("bob")
	t2, _ := c.createSession("bob")
	conns := []*wsConn{a.dialToken(t1), a.dialToken(t2), b.dialToken(t1)}
	for _, w := range conns {
		w.mustNext("welcome")
	}
	if st, body := c.api("DELETE", "/api/v1/users/bob/sessions", nil); st != 200 {
		t.Fatalf("revoke user: %d %s", st, body)
	}
	for _, w := range conns {
		if code := w.closeCode(5 * time.Second); code != 4500 {
			t.Fatalf("close code %d, want 4500", code)
		}
	}

	// The cluster view lists all three.
	st, body = b.api("GET", "/api/v1/cluster", nil)
	var view struct {
		Instances []struct {
			ID    string `json:"id"`
			Alive bool   `json:"alive"`
		} `json:"instances"`
	}
	if err := json.Unmarshal(body, &view); st != 200 || err != nil || len(view.Instances) != 3 {
		t.Fatalf("cluster: %d %s", st, body)
	}
}

// Pub/sub is lossy: a revocation that never reached an instance is caught by
// reconciliation after its subscription comes back.
func TestReconcileAfterSubscriberKilled(t *testing.T) {
	srv := redistest.Start(t)
	core, logs := observer.New(zapcore.InfoLevel)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	g := startGateway(t, gwOptions{rdb: rdb, log: zap.New(zapcore.NewTee(core, zaptest.NewLogger(t).Core())),
		env: map[string]string{"RECONCILE_INTERVAL": "1h"}})
	waitFor(t, 5*time.Second, "subscribed", func() bool { return g.srv.subscribed.Load() })
	tok, handle := g.createSession("carol")
	w := g.dialToken(tok)
	w.mustNext("welcome")

	// Kill the subscriber connection and revoke behind the gateway's back:
	// nothing is published, so only reconciliation can close the socket.
	if _, err := srv.Do("CLIENT KILL TYPE pubsub"); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Del(context.Background(), g.cfg.KeyPrefix+"s:"+handle).Err(); err != nil {
		t.Fatal(err)
	}
	if code := w.closeCode(10 * time.Second); code != 4500 {
		t.Fatalf("close code %d, want 4500", code)
	}
	// The close reaches the client before the pass logs its summary.
	waitFor(t, 5*time.Second, "a reconcile log line", func() bool {
		return logs.FilterMessage("reconciled").Len() > 0
	})
}

// A Redis restart without persistence loses every session: once Redis is
// back, the reconciler closes their connections with 4504 "session lost"
// (not 4500: nobody revoked them) and logs the reset at ERROR.
func TestReconcileAfterRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	core, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t).Core()))
	rm, err := redisconn.New(redisconn.Config{Addrs: []string{srv.Addr()}, CheckInterval: 100 * time.Millisecond,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond}, log.Named("redis"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rm.Close() })
	if err := rm.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, gwOptions{rdb: rm.Client(), redis: rm, log: log,
		env: map[string]string{"RECONCILE_INTERVAL": "1s", "PUBSUB_HEARTBEAT_INTERVAL": "200ms"}})
	tok, handle := g.createSession("dan")
	w := g.dialToken(tok)
	w.mustNext("welcome")
	waitFor(t, 5*time.Second, "ready", func() bool {
		st, _ := doJSON(t, g.http.URL, "GET", "/readyz", nil, "")
		return st == 200
	})
	waitFor(t, 10*time.Second, "store generation recorded", func() bool {
		n, err := rm.Client().Exists(context.Background(), g.cfg.KeyPrefix+"generation").Result()
		return err == nil && n == 1
	})

	srv.Stop()
	waitFor(t, 10*time.Second, "readyz degraded during outage", func() bool {
		st, _ := doJSON(t, g.http.URL, "GET", "/readyz", nil, "")
		return st == 503
	})
	srv.Restart() // empty: every session is gone
	if code := w.closeCode(10 * time.Second); code != 4504 {
		t.Fatalf("close code %d, want 4504 (session lost)", code)
	}
	waitFor(t, 5*time.Second, "store reset logged at ERROR", func() bool {
		return logs.FilterMessage("session store reset").FilterLevelExact(zapcore.ErrorLevel).Len() > 0
	})
	if _, ok, err := g.store.Get(context.Background(), handle); ok || err != nil {
		t.Fatalf("session after the restart: ok=%v err=%v", ok, err)
	}
	waitFor(t, 10*time.Second, "readyz ok after recovery", func() bool {
		st, _ := doJSON(t, g.http.URL, "GET", "/readyz", nil, "")
		return st == 200
	})
	if logs.FilterMessageSnippet("liveness").Len() == 0 {
		t.Fatal("no pub/sub liveness state-change line logged")
	}
}
