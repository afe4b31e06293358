package gateway

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sessiongate/sessiongate/internal/redistest"
	"github.com/sessiongate/sessiongate/pubsub"
)

// cacheEnv makes the session cache outlive every test step, so what the
// tests see is the cache's invalidation, never its expiry.
var cacheEnv = map[string]string{
	"SESSION_CACHE_TTL":              "1m",
	"RECONCILE_INTERVAL":             "1h",
	"WS_MAX_CONNECTIONS_PER_SESSION": "1000",
	"WS_MAX_CONNECTIONS_PER_USER":    "1000",
}

// dialStatus dials with a bearer token and returns the open connection or
// the HTTP status of the refusal.
func dialStatus(t *testing.T, g *testGateway, token string) (*wsConn, int) {
	t.Helper()
	w, resp, err := dialWS(t, g.wsURL(), http.Header{"Authorization": {"Bearer " + token}}, nil)
	if err != nil {
		if resp == nil {
			t.Errorf("dial: %v", err)
			return nil, 0
		}
		if resp.StatusCode != http.StatusUnauthorized {
			t.Logf("dial refused: %d %v", resp.StatusCode, err)
		}
		return nil, resp.StatusCode
	}
	return w, http.StatusSwitchingProtocols
}

// warm connects to g until its cache has served the session at least
// twice, so the steps after it test a cached session.
func warm(t *testing.T, g *testGateway, token string) {
	t.Helper()
	h0 := g.srv.sessions.Hits()
	for g.srv.sessions.Hits() < h0+2 {
		w, st := dialStatus(t, g, token)
		if w == nil {
			t.Fatalf("warm-up dial refused with %d", st)
		}
		w.mustNext("welcome")
		w.c.Close(websocket.StatusNormalClosure, "")
	}
}

// cachedOnB starts instances a and b on a real redis-server, creates a
// session for user through a, and connects to b until b's cache serves it
// and holds it. A liveness loss or gap empties the cache (as it must), so
// one during the warm-up (a loaded machine can hold a heartbeat past the
// liveness timeout) warms it again.
func cachedOnB(t *testing.T, user string) (srv *redistest.Server, a, b *testGateway, token, handle string) {
	t.Helper()
	srv = redistest.Start(t)
	gws := startInstances(t, srv, 2, cacheEnv)
	a, b = gws[0], gws[1]
	token, handle = a.createSession(user)
	var held int
	onSteadyBus(t, b, func() {
		warm(t, b, token)
		held = b.srv.sessions.Len()
	})
	if held != 1 {
		t.Fatalf("B caches %d sessions after the warm-up, want 1", held)
	}
	return srv, a, b, token, handle
}

// The promise under the cache: revocations land while a client reconnects
// to instance B over and over (each connection kept open), with B's and
// A's pub/sub subscriptions killed in between, so B may get the revocation
// as an event or only learn of a gap. Every connection B accepted is closed
// with 4500, B refuses the session from then on, and its cache did serve
// the session before (the test exercises the cache, not the store).
func TestSessionCacheRevokedDuringReconnectsWithPubSubKilled(t *testing.T) {
	srv, a, b, tok, handle := cachedOnB(t, "dana")

	const keep = 32
	var (
		mu      sync.Mutex
		open    []*wsConn
		refused atomic.Bool // a 401 since the revocation: refused for good
		revoked atomic.Bool
		// What B answered since the revocation, for the failure message.
		acceptedAfter, unavailableAfter atomic.Int64
		stop                            = make(chan struct{})
		streamed                        = make(chan struct{})
	)
	var stopOnce sync.Once
	stopStream := func() {
		stopOnce.Do(func() { close(stop) })
		<-streamed
	}
	// Registered after the instances: it runs before they stop, so the
	// stream never dials a stopped instance, whatever ends the test.
	t.Cleanup(stopStream)
	go func() {
		defer close(streamed)
		for {
			select {
			case <-stop:
				return
			default:
			}
			w, st := dialStatus(t, b, tok)
			if w == nil {
				// 503: the store read failed (a loaded machine can time it
				// out); a refusal, but not the one this waits for.
				if st != http.StatusUnauthorized && st != http.StatusServiceUnavailable {
					t.Errorf("refused with %d, want 401 or 503", st)
					return
				}
				if st == http.StatusUnauthorized {
					refused.Store(true)
				} else if revoked.Load() {
					unavailableAfter.Add(1)
				}
				continue
			}
			if refused.Load() {
				t.Errorf("B accepted the session after refusing it")
			}
			if revoked.Load() {
				acceptedAfter.Add(1)
			}
			mu.Lock()
			open = append(open, w)
			if len(open) > keep {
				// Keep the connections around the revocation; those opened
				// long before it are closed here so the stream stays small.
				open[0].c.Close(websocket.StatusNormalClosure, "")
				open = open[1:]
			}
			mu.Unlock()
		}
	}()
	hits := b.srv.sessions.Hits()
	waitFor(t, generous, "the stream served from B's cache", func() bool { return b.srv.sessions.Hits() >= hits+3 })

	if _, err := srv.Do("CLIENT KILL TYPE pubsub"); err != nil {
		t.Fatal(err)
	}
	if st, body := a.api(http.MethodDelete, "/api/v1/sessions/"+handle, nil); st != http.StatusNoContent && st != http.StatusAccepted {
		t.Fatalf("revoke: %d %s", st, body)
	}
	revoked.Store(true)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("since the revocation B accepted %d handshakes and answered 503 to %d", acceptedAfter.Load(), unavailableAfter.Load())
		}
	})
	waitFor(t, generous, "B refuses the revoked session", refused.Load)
	stopStream()

	mu.Lock()
	defer mu.Unlock()
	if len(open) == 0 {
		t.Fatal("the stream opened no connection")
	}
	for i, w := range open {
		if code := w.closeCode(generous); code != 4500 {
			t.Fatalf("connection %d of %d accepted by B: close code %d, want 4500", i+1, len(open), code)
		}
	}
	if w, st := dialStatus(t, b, tok); w != nil || st != http.StatusUnauthorized {
		t.Fatalf("after the revocation B answered %d, want 401", st)
	}
}

// A bus gap empties the cache: a session destroyed while B's subscription
// was down (its event lost) is read from the store again, and refused.
func TestSessionCacheClearedOnBusGap(t *testing.T) {
	srv, a, b, tok, handle := cachedOnB(t, "erin")

	if _, err := srv.Do("CLIENT KILL TYPE pubsub"); err != nil {
		t.Fatal(err)
	}
	// B empties its cache when it learns of the gap (or, before that,
	// when its liveness lapses): without either, the entry stays.
	waitFor(t, generous, "B's cache emptied by the gap", func() bool { return b.srv.sessions.Len() == 0 })
	// Destroyed behind every instance's back: the event a revocation
	// would publish is the one the gap lost.
	if _, err := a.store.Destroy(context.Background(), handle); err != nil {
		t.Fatal(err)
	}
	if w, st := dialStatus(t, b, tok); w != nil || st != http.StatusUnauthorized {
		t.Fatalf("B answered %d for a session destroyed during its bus gap, want 401", st)
	}
}

// A user revocation from an instance that does not name the sessions it
// destroyed (an older version) empties the cache: B has no tombstone to
// refuse them with.
func TestSessionCacheClearedByUserRevocationWithoutHandles(t *testing.T) {
	_, a, b, tok, handle := cachedOnB(t, "fred")

	if _, err := a.store.Destroy(context.Background(), handle); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.srv.d.Bus.Publish(ctx, pubsub.Event{Kind: pubsub.KindUserRevoked, Origin: "old-instance", Time: time.Now(), UserID: "fred"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, generous, "B applied the event", func() bool { return b.srv.sessions.Len() == 0 })
	if w, st := dialStatus(t, b, tok); w != nil || st != http.StatusUnauthorized {
		t.Fatalf("B answered %d after the user's revocation, want 401", st)
	}
}

// A revocation event invalidates the cached session before B's tombstone
// exists, and the cache never outlives the tombstone: after the event,
// B refuses the session even with its cache left as long as possible.
func TestSessionCacheInvalidatedByRevocationEvent(t *testing.T) {
	_, a, b, tok, handle := cachedOnB(t, "gina")
	if hits, misses := metricValue(t, b, "sessiongate_session_cache_hits_total", ""), metricValue(t, b, "sessiongate_session_cache_misses_total", ""); hits < 2 || misses < 1 {
		t.Fatalf("cache metrics: %v hits, %v misses; want >= 2 and >= 1", hits, misses)
	}
	if st, body := a.api(http.MethodDelete, "/api/v1/sessions/"+handle, nil); st != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", st, body)
	}
	waitFor(t, generous, "B got the event", func() bool { return b.srv.rev.Revoked(handle) })
	if n := b.srv.sessions.Len(); n != 0 {
		t.Fatalf("B still caches %d sessions after the revocation event", n)
	}
	if w, st := dialStatus(t, b, tok); w != nil || st != http.StatusUnauthorized {
		t.Fatalf("B answered %d, want 401", st)
	}
}
