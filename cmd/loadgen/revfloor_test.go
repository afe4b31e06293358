package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// startRevocationFloor serves a floor server in this process, subscribed to
// the revocation path floor's channel on the Redis at addr.
func startRevocationFloor(t *testing.T, ctx context.Context, addr string) *httptest.Server {
	t.Helper()
	fl, srv := startTestFloor(t)
	release, err := fl.serveRevocations(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(release)
	return srv
}

// The revocation path floor on a real redis-server: a DELETE to A' deletes
// that session's key and closes, with 4500, exactly the connection on B'
// that presented the token, and
// revokeAll times each one; the other connections stay open, and a token
// nobody holds closes nothing.
func TestRevocationPathFloor(t *testing.T) {
	rs := redistest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a := startRevocationFloor(t, ctx, rs.Addr())
	b := startRevocationFloor(t, ctx, rs.Addr())

	f := newFleet(newDialers(10*time.Second), strings.TrimPrefix(b.URL, "http://"), "/hold")
	defer f.closeAll()
	others := []string{"", "other-1", "other-2"}
	if _, err := f.open(ctx, others, 3); err != nil {
		t.Fatal(err)
	}
	toks := []string{"rv-1", "rv-2"}
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()
	for _, tok := range append(toks, "other-1") {
		if err := rdb.Set(ctx, floorSessionPrefix+tok, "s", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	conns, err := f.open(ctx, toks, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := waitConnsOpen(ctx, b.URL, 5, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	api := newAPIClient(a.URL, "")
	defer api.close()
	revoke := func(ctx context.Context, tok string) error {
		return api.do(ctx, http.MethodDelete, "/revoke/"+tok, nil, http.StatusNoContent, nil)
	}
	// Watched from here: the "nobody" event below is no timed revocation's
	// and must not be counted as one's, however late the watch reads it.
	bus, err := watchBus(ctx, rs.Addr(), floorRevokeChannel, floorRevokedToken)
	if err != nil {
		t.Fatal(err)
	}
	// Published and received by B', which holds no such token.
	if err := revoke(ctx, "nobody"); err != nil {
		t.Fatal(err)
	}
	b0, err := scrape(ctx, b.URL)
	if err != nil {
		t.Fatal(err)
	}
	res := revokeAll(ctx, revoke, conns, toks, bus)
	if res.Latency.N != 2 || res.Errors != 0 || res.TimedOut != 0 || res.WrongCode != 0 {
		t.Fatalf("revokeAll = %+v; want 2 timed closes with 4500", res)
	}
	// Each revocation's event was seen on the bus after its DELETE was sent.
	if res.ToBus.N != 2 || res.BusToClose.N != 2 || res.ToBus.P50 <= 0 {
		t.Errorf("split at the bus: to bus %+v, bus to close %+v; want 2 each, after the DELETE", res.ToBus, res.BusToClose)
	}
	for i, c := range conns {
		if code := c.code.Load(); code != 4500 {
			t.Errorf("revoked connection %d closed with %d", i, code)
		}
	}
	// The floor reports the runtime metrics the phase's heap figures are
	// read from, as the gateway does.
	b1, err := scrape(ctx, b.URL)
	if err != nil {
		t.Fatal(err)
	}
	if alloc, gcs, ok := heapDelta(b0, b1, len(toks)); !ok || alloc <= 0 || gcs < 0 {
		t.Errorf("B' heap figures over the revocations: %v B each, %d collections (ok %v)", alloc, gcs, ok)
	}
	// The revoked sessions' keys are gone, the other's is not.
	if n, err := rdb.Exists(ctx, floorSessionPrefix+"rv-1", floorSessionPrefix+"rv-2", floorSessionPrefix+"other-1").Result(); err != nil || n != 1 {
		t.Errorf("session keys left after revoking rv-1 and rv-2: %d (%v), want 1 (other-1's)", n, err)
	}
	// The other connections are still open: the server still counts them,
	// and they still answer (a fan-out reaches all three).
	if err := waitConnsOpen(ctx, b.URL, 3, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	bAPI := newAPIClient(b.URL, "")
	defer bAPI.close()
	e0 := f.events.Load()
	if err := bAPI.do(ctx, http.MethodPost, "/fanout", floorEvent(time.Now().UnixNano()), http.StatusAccepted, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.waitEvents(ctx, e0+3, 30*time.Second); err != nil {
		t.Fatalf("the other connections after the revocations: %v", err)
	}
	if f.openCount() != 3 {
		t.Errorf("%d connections open after revoking 2 of 5", f.openCount())
	}
}

// Without -redis the floor has no revocation path: a clear 404, not a
// panic.
func TestRevocationPathFloorOff(t *testing.T) {
	_, srv := startTestFloor(t)
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/revoke/x", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("DELETE /revoke/x without Redis: %d, want 404", resp.StatusCode)
	}
}

// The path floor adds, beside the two revocation goals, the p99
// goal held to the bare parts (a check, printed as such) and the gateway's
// latency over the path floor's at p99 and p50.
func TestJudgeRevocationWithPathFloor(t *testing.T) {
	res := &results{
		RedisHop: latency{N: 100, P50: 0.1, P99: 0.2},
		Revocation: revocationResult{
			Revocations: 100, OthersOpen: 10000,
			Latency: latency{N: 100, P50: 0.5, P99: 2.0},
			PathFloor: &revocationResult{
				Revocations: 100, OthersOpen: 10000,
				Latency: latency{N: 100, P50: 0.6, P99: 1.0},
			},
		},
	}
	res.judge()
	want := map[string]struct {
		value      float64
		met, check bool
	}{
		"cross-instance revocation p99 / raw pub/sub hop p99":                                      {10, false, false},
		"cross-instance revocation p50 / raw pub/sub hop p50":                                      {5, true, false},
		"check: revocation path floor p99 / raw pub/sub hop p99 (the p99 goal held to bare parts)": {5, false, true},
		"proposed: cross-instance revocation p99 / revocation path floor p99":                      {2, false, false},
		"proposed: cross-instance revocation p50 / revocation path floor p50":                      {0.5 / 0.6, true, false},
	}
	if len(res.Goals) != len(want) {
		t.Fatalf("%d goals, want %d: %+v", len(res.Goals), len(want), res.Goals)
	}
	for _, g := range res.Goals {
		w, ok := want[g.Name]
		if !ok {
			t.Errorf("unexpected goal %q", g.Name)
			continue
		}
		if d := g.Value - w.value; d > 1e-9 || d < -1e-9 || g.Met != w.met || g.Check != w.check || !g.Valid {
			t.Errorf("%s: value %v met %v check %v valid %v; want %v %v %v true", g.Name, g.Value, g.Met, g.Check, g.Valid, w.value, w.met, w.check)
		}
	}
	var b strings.Builder
	res.printTable(&b)
	for _, s := range []string{"[check: over] check: revocation path floor p99", "revocation A->B p99 (ms) vs path floor", "[met] proposed: cross-instance revocation p50", "(path floor)"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, b.String())
		}
	}

	// A path floor that lost a connection is not like for like: its check
	// and both proposed goals are invalid, the goals are not.
	res.Goals = nil
	res.Revocation.PathFloor.TimedOut = 1
	res.judge()
	for _, g := range res.Goals {
		if g.Valid == (strings.HasPrefix(g.Name, "check:") || strings.HasPrefix(g.Name, "proposed:")) {
			t.Errorf("%s: valid %v after the path floor timed out once", g.Name, g.Valid)
		}
	}
}
