//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/e2e/internal/cluster"
)

// revokeBound bounds the wait for a revocation to close every socket: a
// hang detector, not a speed goal (those live in the benchmarks), so a
// loaded machine never hits it.
const revokeBound = generous

// Scenario 1: an event published through the API of an instance that does
// not hold the connection reaches the browser through Redis pub/sub.
func TestPublishReachesConnectionOnAnotherInstance(t *testing.T) {
	forEachLB(t, testPublishReachesConnectionOnAnotherInstance)
}

func testPublishReachesConnectionOnAnotherInstance(t *testing.T, lb string) {
	tc := startCluster(t, cluster.Options{LB: lb})
	b := startBrowser(t, tc, false)
	ctx := b.newContext("alice")
	p := ctx.newPage("tab")
	idx, ws := p.loginAndConnect(tc.URL(), "alice")
	if ws.Welcome.UserID != "alice" {
		t.Fatalf("welcome user = %q, want alice", ws.Welcome.UserID)
	}
	ck := ctx.sessionCookie(tc, tc.URL(), "sg_session")
	if !ck.HTTPOnly || ck.SameSite != "Lax" || ck.Path != "/" || ck.Secure {
		t.Errorf("development cookie = %+v, want HttpOnly, SameSite=Lax, Path=/, not Secure", ck)
	}

	// The demo page shows who and where from the client's welcome.
	var shown struct{ Who, Instance, Conn string }
	p.waitFor(generous, "demo page shows the welcome",
		`(document.getElementById('conn').textContent.length > 1) && {who: document.getElementById('who').textContent, instance: document.getElementById('instance').textContent, conn: document.getElementById('conn').textContent}`, &shown)
	if shown.Who != "alice" || shown.Instance != ws.Welcome.Instance || shown.Conn != ws.Welcome.ConnID {
		t.Errorf("demo page shows %+v, welcome was %+v", shown, ws.Welcome)
	}

	holder := ws.Welcome.Instance
	via := tc.other(holder)
	res := tc.publish(via, "alice", "greeting", map[string]any{"text": "hello from " + via.ID})
	if res.DeliveredLocal != 0 {
		t.Errorf("publish via %s delivered_local = %d, want 0 (the connection is on %s)", via.ID, res.DeliveredLocal, holder)
	}
	var got json.RawMessage
	p.waitFor(generous, "event on the socket", fmt.Sprintf(
		`(window.__ws[%d].events.find(e => e.id === %s) || null)`, idx, jsString(res.ID)), &got)
	if !strings.Contains(string(got), "hello from "+via.ID) {
		t.Errorf("event = %s", got)
	}
	// The client library dispatched it too: the demo page logs its events.
	p.waitFor(generous, "demo page logged the event",
		`document.getElementById('log').textContent.includes('event greeting')`, nil)
	t.Logf("connection on %s received the event published via %s", holder, via.ID)
}

// Scenario 2: two tabs of one user on different instances; logout in one
// closes both with 4500, both pages say "signed out", neither reconnects.
func TestLogoutInOneTabClosesEveryTab(t *testing.T) { forEachLB(t, testLogoutInOneTabClosesEveryTab) }

func testLogoutInOneTabClosesEveryTab(t *testing.T, lb string) {
	tc := startCluster(t, cluster.Options{LB: lb})
	b := startBrowser(t, tc, false)
	ctx := b.newClockContext("bob")
	a := ctx.newPage("a")
	ia, wa := a.loginAndConnect(tc.URL(), "bob")
	ck := ctx.sessionCookie(tc, tc.URL(), "sg_session")

	bp := ctx.newPage("b")
	bp.goto_(tc.URL() + "/") // the session exists: the demo page connects by itself
	ib, wb := bp.openSocket(generous, 0, "second tab welcome")
	for try := 0; wb.Welcome.Instance == wa.Welcome.Instance; try++ {
		if try == 30 {
			t.Fatalf("second tab always landed on %s", wa.Welcome.Instance)
		}
		bp.eval(`(window.sg.client.close(), window.sg.client.connect(), true)`, nil)
		ib, wb = bp.openSocket(generous, ib+1, "second tab reconnect")
	}
	t.Logf("tab a on %s, tab b on %s", wa.Welcome.Instance, wb.Welcome.Instance)
	na, nb := len(a.sockets()), len(bp.sockets())

	start := time.Now()
	a.click("#logout-btn")
	for _, c := range []struct {
		p   *page
		idx int
	}{{a, ia}, {bp, ib}} {
		var code int
		c.p.waitFor(revokeBound, "socket closed after logout",
			fmt.Sprintf(`window.__ws[%d].closed && window.__ws[%d].closed.code`, c.idx, c.idx), &code)
		if code != 4500 {
			t.Errorf("tab %s closed with %d, want 4500", c.p.name, code)
		}
	}
	t.Logf("both tabs closed with 4500 %s after the logout click", time.Since(start).Round(time.Millisecond))
	a.checkSignedOut(t, revokeBound)
	bp.checkSignedOut(t, revokeBound)

	// Neither reconnects: run every timer the pages set for the next ten
	// minutes (far past the client's longest reconnect delay); a scheduled
	// reconnect would open a socket now.
	ctx.runTimers(10 * time.Minute)
	for _, c := range []struct {
		p *page
		n int
	}{{a, na}, {bp, nb}} {
		if n := len(c.p.sockets()); n != c.n {
			t.Errorf("tab %s opened %d new sockets after the logout", c.p.name, n-c.n)
		}
		var st string
		c.p.eval(`window.sg.client.state`, &st)
		if st != "closed" {
			t.Errorf("tab %s client state = %q, want closed", c.p.name, st)
		}
	}
	// The old cookie is dead everywhere.
	for _, g := range tc.Gateways {
		code := tc.do(http.MethodGet, g.URL()+"/auth/session", http.Header{"Cookie": {"sg_session=" + ck.Value}}, nil, nil)
		if code != http.StatusUnauthorized {
			t.Errorf("/auth/session on %s with the logged-out cookie: HTTP %d, want 401", g.ID, code)
		}
	}
}

// Scenario 3: kill -9 of the instance holding the connection; the client
// reconnects through the LB to another instance and the session survives.
func TestKilledInstanceClientReconnectsElsewhere(t *testing.T) {
	forEachLB(t, testKilledInstanceClientReconnectsElsewhere)
}

func testKilledInstanceClientReconnectsElsewhere(t *testing.T, lb string) {
	tc := startCluster(t, cluster.Options{LB: lb})
	b := startBrowser(t, tc, false)
	ctx := b.newContext("carol")
	p := ctx.newPage("tab")
	idx, ws := p.loginAndConnect(tc.URL(), "carol")
	ctx.sessionCookie(tc, tc.URL(), "sg_session")
	victim := tc.Gateway(ws.Welcome.Instance)

	start := time.Now()
	victim.Kill()
	nidx, nws := p.openSocket(generous, idx+1, "reconnect after kill -9")
	t.Logf("killed %s; reconnected to %s after %s", victim.ID, nws.Welcome.Instance, time.Since(start).Round(time.Millisecond))
	if nws.Welcome.Instance == victim.ID {
		t.Fatalf("reconnected to the killed instance %s", victim.ID)
	}
	if nws.Welcome.UserID != "carol" {
		t.Errorf("welcome after reconnect: user %q, want carol (session survives)", nws.Welcome.UserID)
	}
	if old := p.sockets()[idx]; old.Closed == nil || old.Closed.Code == 4500 {
		t.Errorf("old socket close = %+v, want a transient close", old.Closed)
	}
	res := tc.publish(tc.other(nws.Welcome.Instance), "carol", "after-kill", map[string]int{"n": 1})
	p.waitFor(generous, "event after reconnect", fmt.Sprintf(
		`window.__ws[%d].events.some(e => e.id === %s)`, nidx, jsString(res.ID)), nil)
	var sessionStatus int
	p.eval(`fetch('/auth/session').then(r => r.status)`, &sessionStatus)
	if sessionStatus != 200 {
		t.Errorf("/auth/session after the kill: HTTP %d", sessionStatus)
	}

	// The killed instance comes back on its port and the LB uses it again.
	rctx, cancel := context.WithTimeout(context.Background(), generous)
	defer cancel()
	if err := victim.Restart(rctx); err != nil {
		t.Fatal(err)
	}
	if err := tc.LB.WaitUp(rctx, victim.ID); err != nil {
		t.Fatal(err)
	}
}

// Scenario 4: SIGTERM drains an instance: its clients get 1001, reconnect
// elsewhere, and every event published after the reconnect arrives in order.
func TestDrainReconnectsWithoutLoss(t *testing.T) { forEachLB(t, testDrainReconnectsWithoutLoss) }

func testDrainReconnectsWithoutLoss(t *testing.T, lb string) {
	tc := startCluster(t, cluster.Options{LB: lb})
	b := startBrowser(t, tc, false)
	ctx := b.newContext("dave")
	p := ctx.newPage("tab")
	idx, ws := p.loginAndConnect(tc.URL(), "dave")
	ctx.sessionCookie(tc, tc.URL(), "sg_session")
	victim := tc.Gateway(ws.Welcome.Instance)

	if err := victim.Terminate(); err != nil {
		t.Fatal(err)
	}
	var code int
	p.waitFor(generous, "drain close", fmt.Sprintf(`window.__ws[%d].closed && window.__ws[%d].closed.code`, idx, idx), &code)
	if code != 1001 {
		t.Errorf("drained socket closed with %d, want 1001", code)
	}
	nidx, nws := p.openSocket(generous, idx+1, "reconnect after drain")
	if nws.Welcome.Instance == victim.ID {
		t.Fatalf("reconnected to the draining instance %s", victim.ID)
	}
	t.Logf("drained %s; reconnected to %s", victim.ID, nws.Welcome.Instance)
	wctx, cancel := context.WithTimeout(context.Background(), generous)
	defer cancel()
	if err := victim.Wait(wctx); err != nil {
		t.Fatal(err)
	}
	if err := victim.ExitErr(); err != nil {
		t.Errorf("drained instance exit: %v, want exit 0", err)
	}

	const n = 25
	via := tc.other(nws.Welcome.Instance)
	ids := make([]string, n)
	for i := range n {
		ids[i] = tc.publish(via, "dave", "seq", map[string]int{"seq": i}).ID
	}
	p.waitFor(generous, fmt.Sprintf("%d events after the reconnect", n),
		fmt.Sprintf(`window.__ws[%d].events.length >= %d`, nidx, n), nil)
	got := p.sockets()[nidx].Events
	if len(got) != n {
		t.Fatalf("got %d events, want %d", len(got), n)
	}
	for i, e := range got {
		var d struct{ Seq int }
		_ = json.Unmarshal(e.Data, &d)
		if e.ID != ids[i] || d.Seq != i {
			t.Errorf("event %d: id %s seq %d, want id %s seq %d", i, e.ID, d.Seq, ids[i], i)
		}
	}
}

// Scenario 5: redis-server restarts; clients stay connected or reconnect, and
// a revocation after recovery still closes everything with 4500.
func TestRedisRestartThenRevocation(t *testing.T) {
	tc := startCluster(t, cluster.Options{})
	b := startBrowser(t, tc, false)
	ctx := b.newClockContext("erin")
	p1 := ctx.newPage("t1")
	p1.loginAndConnect(tc.URL(), "erin")
	ctx.sessionCookie(tc, tc.URL(), "sg_session")
	p2 := ctx.newPage("t2")
	p2.goto_(tc.URL() + "/")
	p2.openSocket(generous, 0, "second tab welcome")

	tc.Redis.Kill()
	eventually(t, generous, "an instance reports redis down", func() error {
		for _, g := range tc.Gateways {
			if tc.do(http.MethodGet, g.URL()+"/readyz", nil, nil, nil) != http.StatusOK {
				return nil
			}
		}
		return fmt.Errorf("every /readyz still 200")
	})
	rctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := tc.Redis.Restart(rctx); err != nil {
		t.Fatal(err)
	}
	for _, g := range tc.Gateways {
		if err := g.WaitReady(rctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := tc.LB.WaitUp(rctx, "gw1", "gw2", "gw3"); err != nil {
		t.Fatal(err)
	}

	var idx [2]int
	for i, p := range []*page{p1, p2} {
		var ws wsRecord
		idx[i], ws = p.openSocket(generous, 0, "connected after the redis restart")
		res := tc.publish(tc.other(ws.Welcome.Instance), "erin", "after-redis", map[string]int{"tab": i})
		p.waitFor(generous, "event after the redis restart", fmt.Sprintf(
			`window.__ws.some(w => w.events.some(e => e.id === %s))`, jsString(res.ID)), nil)
		t.Logf("tab %s: %d sockets so far, now on %s", p.name, idx[i]+1, ws.Welcome.Instance)
	}
	counts := [2]int{len(p1.sockets()), len(p2.sockets())}

	tc.revokeUser(tc.Gateways[0], "erin")
	for _, p := range []*page{p1, p2} {
		var code int
		p.waitFor(revokeBound, "closed after revocation",
			`(() => { const l = window.__ws; const w = l[l.length-1]; return w.closed && w.closed.code; })()`, &code)
		if code != 4500 {
			t.Errorf("tab %s closed with %d, want 4500", p.name, code)
		}
		p.checkSignedOut(t, revokeBound)
	}
	// Run every timer the pages set for the next ten minutes: a scheduled
	// reconnect would open a socket now.
	ctx.runTimers(10 * time.Minute)
	for i, p := range []*page{p1, p2} {
		if n := len(p.sockets()); n != counts[i] {
			t.Errorf("tab %s reconnected after the revocation (%d new sockets)", p.name, n-counts[i])
		}
	}
}
