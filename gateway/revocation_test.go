package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sessiongate/sessiongate/internal/redistest"
	"github.com/sessiongate/sessiongate/session"
)

// persistent are redis-server arguments that keep the data across a
// kill and restart (every write is fsynced to the append-only file).
var persistent = []string{"--appendonly", "yes", "--appendfsync", "always"}

// startPeers is startInstances with a store wrapper and a log observer per
// instance.
func startPeers(t *testing.T, srv *redistest.Server, n int, env map[string]string,
	wrap func(i int, s session.Store) session.Store) ([]*testGateway, []*observer.ObservedLogs) {
	t.Helper()
	var gs []*testGateway
	var logs []*observer.ObservedLogs
	for i := 0; i < n; i++ {
		e := map[string]string{"GATEWAY_INSTANCE_ID": "inst-" + string(rune('a'+i))}
		for k, v := range env {
			e[k] = v
		}
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: 1,
			MinRetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond})
		t.Cleanup(func() { rdb.Close() })
		core, obs := observer.New(zapcore.InfoLevel)
		log := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t).Core())).Named(e["GATEWAY_INSTANCE_ID"])
		o := gwOptions{env: e, rdb: rdb, log: log}
		if wrap != nil {
			o.wrap = func(s session.Store) session.Store { return wrap(i, s) }
		}
		gs = append(gs, startGateway(t, o))
		logs = append(logs, obs)
	}
	waitFor(t, generous, "instances see each other", func() bool {
		for _, g := range gs {
			if len(g.srv.cluster.View()) < n {
				return false
			}
		}
		return true
	})
	return gs, logs
}

// Issue 9 item 3: a revocation while Redis is down is accepted and queued
// (202 pending), closes the local sockets at once, and once Redis is back
// the session is deleted and the sockets on the other instance close too.
func TestRevokeDuringRedisOutage(t *testing.T) {
	srv := redistest.Start(t, persistent...)
	// No sweep: only the queued revocation can close B's socket.
	gs, logs := startPeers(t, srv, 2, map[string]string{"RECONCILE_INTERVAL": "1h"}, nil)
	a, b := gs[0], gs[1]
	tok, handle := a.createSession("olive")
	onA, onB := a.dialToken(tok), b.dialToken(tok)
	onA.mustNext("welcome")
	onB.mustNext("welcome")

	srv.Stop()
	st, body := a.api("DELETE", "/api/v1/sessions/"+handle, nil)
	if st != http.StatusAccepted || !strings.Contains(string(body), `"status":"pending"`) {
		t.Fatalf("revoke during outage: %d %s, want 202 pending", st, body)
	}
	if code := onA.closeCode(generous); code != 4500 {
		t.Fatalf("local socket closed with %d, want 4500", code)
	}
	// Fail closed here: a reconnect to A is refused while the delete waits.
	if _, resp, err := dialWS(t, a.wsURL(), http.Header{"Authorization": {"Bearer " + tok}}, nil); err == nil ||
		resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("reconnect to A during the outage: err=%v resp=%v, want 401", err, resp)
	}
	// Documented: nothing can reach B while Redis is down.
	if n := b.srv.conns.SessionConns(handle); n != 1 {
		t.Fatalf("B holds %d connections of the session during the outage, want 1", n)
	}
	waitFor(t, generous, "revocation queued log line", func() bool {
		return logs[0].FilterMessage("revocation queued").Len() == 1
	})

	srv.Restart(persistent...)
	if code := onB.closeCode(generous); code != 4500 {
		t.Fatalf("B's socket closed with %d after recovery, want 4500", code)
	}
	waitFor(t, 30*time.Second, "session deleted from the store", func() bool {
		st, _ := a.api("GET", "/api/v1/sessions/"+handle, nil)
		return st == http.StatusNotFound
	})
	waitFor(t, generous, "revocation confirmed, nothing pending", func() bool {
		_, m := doJSON(t, a.http.URL, "GET", "/metrics", nil, "")
		return logs[0].FilterMessage("revocation confirmed").Len() == 1 &&
			strings.Contains(string(m), "\nsessiongate_revocations_pending 0\n")
	})
	// B refuses the revoked token like any other.
	if _, resp, err := dialWS(t, b.wsURL(), http.Header{"Authorization": {"Bearer " + tok}}, nil); err == nil ||
		resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("reconnect to B after recovery: err=%v resp=%v, want 401", err, resp)
	}
}

// destroyUserHook runs a function after the real DestroyUser, as a login
// that lands while a user revocation runs would.
type destroyUserHook struct {
	session.Store
	after *atomic.Pointer[func()]
}

func (h destroyUserHook) DestroyUser(ctx context.Context, userID string) ([]string, error) {
	hs, err := h.Store.DestroyUser(ctx, userID)
	if f := h.after.Load(); f != nil {
		(*f)()
	}
	return hs, err
}

// Issue 9 item 4: a user revocation closes the sessions it destroyed, here
// and on the other instances, and leaves a session created meanwhile alone.
func TestUserRevocationSparesConcurrentSession(t *testing.T) {
	srv := redistest.Start(t)
	var after atomic.Pointer[func()]
	gs, _ := startPeers(t, srv, 2, nil, func(i int, s session.Store) session.Store {
		if i == 0 {
			return destroyUserHook{Store: s, after: &after}
		}
		return s
	})
	a, b := gs[0], gs[1]
	oldTok, _ := a.createSession("uma")
	oldA, oldB := a.dialToken(oldTok), b.dialToken(oldTok)
	oldA.mustNext("welcome")
	oldB.mustNext("welcome")

	// A new login lands between the store's DestroyUser and the closes:
	// its sockets are up before the revocation returns. This runs in A's
	// handler goroutine, so it reports failures instead of calling Fatal.
	var newA, newB *wsConn
	var hookErr error
	f := func() {
		after.Store(nil)
		tok, _, err := b.store.Create(context.Background(), "uma", nil)
		if err != nil {
			hookErr = err
			return
		}
		for _, dst := range []struct {
			g *testGateway
			w **wsConn
		}{{a, &newA}, {b, &newB}} {
			w, _, err := dialWS(t, dst.g.wsURL(), http.Header{"Authorization": {"Bearer " + tok}}, nil)
			if err != nil {
				hookErr = err
				return
			}
			if f, err := w.next(generous); err != nil || f.Type != "welcome" {
				hookErr = fmt.Errorf("welcome on %s: %+v, %v", dst.g.cfg.InstanceID, f, err)
				return
			}
			*dst.w = w
		}
	}
	after.Store(&f)
	st, body := a.api("DELETE", "/api/v1/users/uma/sessions", nil)
	if hookErr != nil {
		t.Fatalf("new login during the revocation: %v", hookErr)
	}
	if st != http.StatusOK || !strings.Contains(string(body), `"revoked":1`) {
		t.Fatalf("revoke user: %d %s", st, body)
	}
	for _, w := range []*wsConn{oldA, oldB} {
		if code := w.closeCode(generous); code != 4500 {
			t.Fatalf("destroyed session's socket closed with %d, want 4500", code)
		}
	}
	// The revocation's events were handled before this message on every
	// instance (one bus, one dispatch order), so the new sockets are open
	// after them if they receive it.
	if st, body := a.api("POST", "/api/v1/publish", map[string]any{"target": map[string]any{"user_id": "uma"}, "event": "still-here"}); st != http.StatusAccepted {
		t.Fatalf("publish: %d %s", st, body)
	}
	for _, w := range []*wsConn{newA, newB} {
		f, err := w.next(generous)
		if err != nil || f.Event != "still-here" {
			t.Fatalf("new session's socket: frame %+v, err %v (close %d); want the event", f, err, w.closeCode(time.Second))
		}
	}
}

// Issue 9 item 7: a FLUSHALL (or a restart without persistence) loses every
// session; their sockets close with 4504 "session lost", not 4500, and the
// instance says so in an ERROR line and a metric.
func TestStoreFlushClosesWithSessionLost(t *testing.T) {
	srv := redistest.Start(t)
	core, logs := observer.New(zapcore.InfoLevel)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	g := startGateway(t, gwOptions{rdb: rdb, log: zap.New(zapcore.NewTee(core, zaptest.NewLogger(t).Core())),
		env: map[string]string{"RECONCILE_INTERVAL": "1s"}})
	tok, _ := g.createSession("vera")
	w := g.dialToken(tok)
	w.mustNext("welcome")
	waitFor(t, generous, "store generation written", func() bool {
		n, err := rdb.Exists(context.Background(), g.cfg.KeyPrefix+"generation").Result()
		return err == nil && n == 1
	})
	// The reconciler remembers the generation when a pass completes, not
	// when its read creates the key: wait for a pass to complete after the
	// key exists, or a FLUSHALL before that looks like a first start.
	passes := metricValue(t, g, "sessiongate_reconciles_total", "")
	waitFor(t, generous, "a reconcile pass completed with the generation", func() bool {
		return metricValue(t, g, "sessiongate_reconciles_total", "") > passes
	})
	if err := rdb.FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if code := w.closeCode(generous); code != 4504 {
		t.Fatalf("close code %d after FLUSHALL, want 4504 (session lost)", code)
	}
	waitFor(t, generous, "store reset logged at ERROR", func() bool {
		l := logs.FilterMessage("session store reset").FilterLevelExact(zapcore.ErrorLevel)
		return l.Len() == 1 && l.All()[0].ContextMap()["sessions_lost"] == int64(1)
	})
	_, m := doJSON(t, g.http.URL, "GET", "/metrics", nil, "")
	if !strings.Contains(string(m), "\nsessiongate_store_resets_total 1\n") {
		t.Fatalf("/metrics lacks sessiongate_store_resets_total 1:\n%s", grepLines(string(m), "store_resets"))
	}
	if _, resp, err := dialWS(t, g.wsURL(), http.Header{"Authorization": {"Bearer " + tok}}, nil); err == nil ||
		resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("reconnect after the reset: err=%v resp=%v, want 401", err, resp)
	}
}
