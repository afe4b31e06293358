package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
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
	return startInstancesWith(t, srv, n, env, nil)
}

// startInstancesWith is startInstances with tweak, when not nil, called on
// instance i's options before it starts.
func startInstancesWith(t *testing.T, srv *redistest.Server, n int, env map[string]string, tweak func(i int, o *gwOptions)) []*testGateway {
	t.Helper()
	var out []*testGateway
	for i := 0; i < n; i++ {
		e := map[string]string{"GATEWAY_INSTANCE_ID": "inst-" + string(rune('a'+i))}
		for k, v := range env {
			e[k] = v
		}
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: 1, MinRetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond})
		t.Cleanup(func() { rdb.Close() })
		o := gwOptions{env: e, rdb: rdb}
		if tweak != nil {
			tweak(i, &o)
		}
		out = append(out, startGateway(t, o))
	}
	// Wait until every instance sees the others' heartbeats, i.e. all are subscribed.
	waitFor(t, generous, "instances see each other", func() bool {
		for _, g := range out {
			if len(g.srv.cluster.View()) < n {
				return false
			}
		}
		return true
	})
	return out
}

// waitFor polls cond until it holds; d is a hang detector (use [generous]),
// never a speed bound.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
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
		if code := w.closeCode(generous); code != 4500 {
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
		if code := w.closeCode(generous); code != 4500 {
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
	waitFor(t, generous, "subscribed", func() bool { return g.srv.subscribed.Load() })
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
	if code := w.closeCode(generous); code != 4500 {
		t.Fatalf("close code %d, want 4500", code)
	}
	// The close reaches the client before the pass logs its summary.
	waitFor(t, generous, "a reconcile log line", func() bool {
		return logs.FilterMessage("reconciled").Len() > 0
	})
}

// A Redis restart without persistence while a session is connected: once
// Redis is back, the reconciler closes the connection within one sweep, with
// 4504 "session lost" (not 4500: nobody revoked it; the store's data set was
// replaced) and logs the reset at ERROR. "Within one sweep" is proven by
// order, not by the wall clock: the reconciler runs its passes one after
// another, each logging one line, and at least once per sweep interval; so
// the socket must be closed by the first pass that starts after Redis
// recovered (one pass may already have been in flight and failed), and no
// successful pass after the outage may leave it open.
func TestReconcileAfterRedisOutage(t *testing.T) {
	srv := redistest.Start(t)
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t).Core()))
	rm, err := redisconn.New(redisconn.Config{Addrs: []string{srv.Addr()}, CheckInterval: 100 * time.Millisecond,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond}, log.Named("redis"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rm.Close() })
	// A marker in the same log stream as the passes: where Redis recovered.
	rm.OnStateChange(func(_, to redisconn.State) {
		log.Info(redisStateMarker, zap.String("to", to.String()))
	})
	if err := rm.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, gwOptions{rdb: rm.Client(), redis: rm, log: log,
		env: map[string]string{"RECONCILE_INTERVAL": "1s", "PUBSUB_HEARTBEAT_INTERVAL": "200ms"}})
	tok, _ := g.createSession("dan")
	w := g.dialToken(tok)
	w.mustNext("welcome")
	waitFor(t, generous, "ready", func() bool {
		st, _ := doJSON(t, g.http.URL, "GET", "/readyz", nil, "")
		return st == 200
	})
	waitFor(t, generous, "store generation recorded", func() bool {
		n, err := rm.Client().Exists(context.Background(), g.cfg.KeyPrefix+"generation").Result()
		return err == nil && n == 1
	})

	log.Info(redisStoppedMarker)
	srv.Stop()
	waitFor(t, generous, "readyz degraded during outage", func() bool {
		st, _ := doJSON(t, g.http.URL, "GET", "/readyz", nil, "")
		return st == 503
	})
	// Let the reconciler try and fail during the outage: the socket it
	// closes later must be closed by a pass, not by the start of one that
	// predates the outage.
	outage := len(logs.All())
	waitFor(t, generous, "a reconcile pass failing during the outage", func() bool {
		for _, p := range reconcilePasses(logs.All()[outage:]) {
			if !p.ok {
				return true
			}
		}
		return false
	})
	srv.Restart() // empty: every session is gone, and so is the store's generation
	log.Info(redisRestartedMarker)
	if code := w.closeCode(generous); code != 4504 {
		t.Fatalf("close code %d, want 4504 (session lost)", code)
	}
	waitFor(t, generous, "store reset logged at ERROR", func() bool {
		return logs.FilterMessage("session store reset").FilterLevelExact(zapcore.ErrorLevel).Len() > 0
	})
	// The close reaches the client before the pass logs its summary.
	waitFor(t, generous, "the closing pass's log line", func() bool {
		for _, p := range reconcilePasses(logs.All()) {
			if p.closed > 0 {
				return true
			}
		}
		return false
	})

	// Where Redis was back for the gateway: once restarted and, if redisconn
	// saw the outage (its client's pool may then refuse to dial for a while),
	// once redisconn saw it end; redisconn notices on its own schedule,
	// possibly after the pass that closed the socket.
	index := func(entries []observer.LoggedEntry, from int, match func(observer.LoggedEntry) bool) int {
		for i := from; i < len(entries); i++ {
			if match(entries[i]) {
				return i
			}
		}
		return -1
	}
	isMsg := func(msg string) func(observer.LoggedEntry) bool {
		return func(e observer.LoggedEntry) bool { return e.Message == msg }
	}
	redisState := func(connected bool) func(observer.LoggedEntry) bool {
		return func(e observer.LoggedEntry) bool {
			return e.Message == redisStateMarker && (e.ContextMap()["to"] == redisconn.StateConnected.String()) == connected
		}
	}
	all := logs.All()
	stopped := index(all, 0, isMsg(redisStoppedMarker))
	recovered := index(all, 0, isMsg(redisRestartedMarker))
	if left := index(all, stopped, redisState(false)); left >= 0 {
		waitFor(t, generous, "redisconn reporting the recovery", func() bool { return index(logs.All(), left, redisState(true)) >= 0 })
		all = logs.All()
		recovered = max(recovered, index(all, left, redisState(true)))
	}
	recovered -= outage // an index into entries

	entries := logs.All()[outage:]
	passes := reconcilePasses(entries)
	t.Logf("reconcile passes from the outage on: %+v", passes)
	// Passes are serial: every one after the first failed one started during
	// the outage or later (one logged just after the outage began may have
	// run before it).
	failed := slices.IndexFunc(passes, func(p reconcilePass) bool { return !p.ok }) // >= 0: waited for above
	closing := -1
	for i := failed + 1; i < len(passes); i++ {
		if p := passes[i]; p.ok {
			if p.closed != 1 {
				t.Fatalf("the first successful pass after the outage (reason %q) closed %d connections, want 1", p.reason, p.closed)
			}
			closing = i
			break
		}
	}
	if closing < 0 {
		t.Fatalf("no successful pass after the outage: %+v", passes)
	}
	t.Logf("redis back at log line %d", recovered)
	var after []reconcilePass
	for _, p := range passes[:closing] {
		if p.idx > recovered {
			after = append(after, p)
		}
	}
	if len(after) > 1 {
		t.Fatalf("%d passes failed after Redis recovered before one closed the socket, want at most the one in flight: %+v",
			len(after), after)
	}
	waitFor(t, generous, "readyz ok after recovery", func() bool {
		st, _ := doJSON(t, g.http.URL, "GET", "/readyz", nil, "")
		return st == 200
	})
	if logs.FilterMessageSnippet("liveness").Len() == 0 {
		t.Fatal("no pub/sub liveness state-change line logged")
	}
}

// The test's own log lines, in the stream the reconcile passes log to: on
// every redisconn state change, and around the outage.
const (
	redisStateMarker     = "test: redis state"
	redisStoppedMarker   = "test: redis stopped"
	redisRestartedMarker = "test: redis restarted"
)

// reconcilePass is one reconcile pass as its log line tells it.
type reconcilePass struct {
	idx    int // index of its line in the entries given to reconcilePasses
	ok     bool
	reason string
	closed int64 // connections closed (successful passes)
}

// reconcilePasses lists the passes logged in entries, in order: every pass
// logs exactly one line, "reconciled" when the session check worked, a
// "reconcile: ... failed" line when it did not.
func reconcilePasses(entries []observer.LoggedEntry) []reconcilePass {
	var out []reconcilePass
	for i, e := range entries {
		m := e.ContextMap()
		reason, _ := m["reason"].(string)
		switch {
		case e.Message == "reconciled":
			closed, _ := m["connections_closed"].(int64)
			out = append(out, reconcilePass{idx: i, ok: true, reason: reason, closed: closed})
		case strings.HasPrefix(e.Message, "reconcile") && strings.Contains(e.Message, "failed"):
			out = append(out, reconcilePass{idx: i, reason: reason})
		}
	}
	return out
}
