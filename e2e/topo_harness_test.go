//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sessiongate/sessiongate/e2e/internal/cluster"
	"github.com/sessiongate/sessiongate/revocation"
)

// The fault tests on Redis Cluster and Sentinel (topo_cluster_test.go,
// topo_sentinel_test.go) share one topology and three gateway processes
// across a sequence of faults. During each fault a stream of logins,
// publishes and revocations flows through the load balancer, and every
// session holds one WebSocket on each instance (dialled directly), so
// "closed on every instance" is three connections closed. After each fault
// the checks of docs/SCALING.md ("What a failover loses"):
//   - every revoked session is closed on every instance within one sweep
//     interval (topoReconcile, plus topoSlack for a loaded machine) of its
//     revocation's confirmation, or, for a revocation confirmed while the
//     topology was failing over, of the moment it was healthy again; and
//     gone from the store by then: a delete that a failing master
//     acknowledged before its replica got it comes back with the replica,
//     and the instances holding the session's tombstone revoke it again
//     (counted from sessiongate_revocations_undone_total);
//   - no valid session is lost, except one acknowledged within the
//     replication window (from replicationWindow before the fault until the
//     topology is healthy again): those are counted and logged, and a lost
//     session acknowledged outside the window fails the test;
//   - pub/sub is live on every instance: /readyz is 200 with pubsub "live"
//     (which needs the instance's own heartbeat back) and an event published
//     through each instance reaches a connection on every instance;
//   - no gateway was restarted (the same pids run).

// topoReconcile is RECONCILE_INTERVAL in the fault tests.
const topoReconcile = 3 * time.Second

// topoSlack is how late past the sweep interval a revoked session's socket
// may close on a machine loaded by stress-ng: a sweep is scheduled late, its
// pipelined check and the close handshake wait for CPU. It bounds a hang,
// not speed.
const topoSlack = 15 * time.Second

// replicationWindow is how long before a fault a write acknowledged by a
// master may still be missing on the replica that takes over (Redis
// replicates asynchronously; on loopback the stream leaves the master in
// the same event-loop turn as the reply, so this is generous).
const replicationWindow = time.Second

// topoStoreTimeout is the instances' revocation store timeout (the
// default): a login younger than it is not yet checked for its index entry.
const topoStoreTimeout = revocation.DefaultStoreTimeout

// topoLive caps the sessions the traffic keeps open (three sockets each).
const topoLive = 18

// topoEnv is the instances' environment in the fault tests; extra (e.g.
// PUBSUB_SHARDS) is added on top.
func topoEnv(extra map[string]string) map[string]string {
	env := map[string]string{
		"RECONCILE_INTERVAL": topoReconcile.String(),
		// The test's sockets answer every ping, but on a loaded machine a
		// pong may be late: a heartbeat close is not the fault under test.
		"WS_PING_INTERVAL": "5s",
		"WS_PONG_TIMEOUT":  "30s",
		"LOG_LEVEL":        "info",
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// topoConn is one WebSocket of a session to one instance. A goroutine
// reads every frame, answers pings, records markers and the close.
type topoConn struct {
	instance string
	c        *websocket.Conn
	cancel   context.CancelFunc
	done     chan struct{}

	mu       sync.Mutex
	code     websocket.StatusCode // -1: closed without a close frame
	closedAt time.Time
	markers  map[string]bool
	notify   chan struct{}
}

func dialTopo(ctx context.Context, tc *testCluster, g *cluster.Gateway, cookie string) (*topoConn, error) {
	rctx, cancel := context.WithCancel(context.Background())
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	url := strings.Replace(g.URL(), "http://", "ws://", 1) + "/ws"
	c, _, err := websocket.Dial(dctx, url, &websocket.DialOptions{HTTPHeader: http.Header{
		"Cookie": {"sg_session=" + cookie},
		"Origin": {tc.URL()},
	}})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("dial %s: %w", g.ID, err)
	}
	_, b, err := c.Read(dctx)
	var w struct {
		Type     string `json:"type"`
		Instance string `json:"instance"`
	}
	if err == nil {
		err = json.Unmarshal(b, &w)
	}
	if err != nil || w.Type != "welcome" || w.Instance != g.ID {
		cancel()
		_ = c.CloseNow()
		return nil, fmt.Errorf("welcome from %s: %s %v", g.ID, b, err)
	}
	tcn := &topoConn{instance: g.ID, c: c, cancel: cancel, done: make(chan struct{}), markers: map[string]bool{}, notify: make(chan struct{}, 1)}
	go tcn.read(rctx)
	return tcn, nil
}

func (c *topoConn) read(ctx context.Context) {
	defer close(c.done)
	for {
		_, b, err := c.c.Read(ctx)
		if err != nil {
			c.mu.Lock()
			c.code, c.closedAt = websocket.CloseStatus(err), time.Now()
			c.mu.Unlock()
			return
		}
		var f struct {
			Type  string `json:"type"`
			Event string `json:"event"`
			Data  struct {
				Marker string `json:"marker"`
			} `json:"data"`
		}
		if json.Unmarshal(b, &f) != nil {
			continue
		}
		switch {
		case f.Type == "ping":
			_ = c.c.Write(ctx, websocket.MessageText, []byte(`{"type":"pong"}`))
		case f.Type == "event" && f.Event == "marker":
			c.mu.Lock()
			c.markers[f.Data.Marker] = true
			c.mu.Unlock()
			select {
			case c.notify <- struct{}{}:
			default:
			}
		}
	}
}

// closed reports whether the socket closed, with its code and when.
func (c *topoConn) closed() (bool, websocket.StatusCode, time.Time) {
	select {
	case <-c.done:
	default:
		return false, 0, time.Time{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return true, c.code, c.closedAt
}

// waitClosed waits until the socket closes or until deadline. A socket
// that closed is reported closed even when the deadline has passed (the
// caller compares the close time with its bound).
func (c *topoConn) waitClosed(deadline time.Time) bool {
	select {
	case <-c.done:
		return true
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-c.done:
		return true
	case <-t.C:
		return false
	}
}

func (c *topoConn) hasMarker(m string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.markers[m]
}

func (c *topoConn) close() {
	c.cancel()
	_ = c.c.CloseNow()
}

// topoSession is one login with a socket on every instance.
type topoSession struct {
	user, cookie, handle string
	ackedAt              time.Time // the login's 200
	conns                []*topoConn

	revokeKind  string
	unknown     bool      // the revocation request failed: outcome unknown
	pending     bool      // answered 202: queued until Redis confirms
	confirmedAt time.Time // the revocation's confirmed time
}

// topoStats counts what the traffic did and what failed (during a
// failover requests may fail; that is counted, not an error).
type topoStats struct {
	logins, loginFailed, publishes, publishFailed, revocations, revokePending, revokeFailed int
}

// topoTraffic is the stream of logins, publishes and revocations.
type topoTraffic struct {
	t      *testing.T
	tc     *testCluster
	client *http.Client

	mu      sync.Mutex
	live    []*topoSession
	revoked []*topoSession // revoked since the last check
	stats   topoStats
	iter    int
	n       int
	stop    chan struct{}
	stopped chan struct{}
	rnd     *rand.Rand
}

func newTopoTraffic(t *testing.T, tc *testCluster) *topoTraffic {
	return &topoTraffic{t: t, tc: tc, client: &http.Client{Timeout: 5 * time.Second}, rnd: rand.New(rand.NewPCG(1, 2))}
}

// start runs the traffic until stopTraffic.
func (tr *topoTraffic) start() {
	tr.mu.Lock()
	tr.stop, tr.stopped = make(chan struct{}), make(chan struct{})
	tr.mu.Unlock()
	go tr.run()
}

func (tr *topoTraffic) stopTraffic() {
	close(tr.stop)
	<-tr.stopped
}

// waitIterations waits until the traffic ran n more iterations.
func (tr *topoTraffic) waitIterations(n int) {
	tr.t.Helper()
	tr.mu.Lock()
	target := tr.iter + n
	tr.mu.Unlock()
	eventually(tr.t, 2*generous, "traffic iterations", func() error {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		if tr.iter < target {
			return fmt.Errorf("%d of %d iterations", tr.iter, target)
		}
		return nil
	})
}

func (tr *topoTraffic) run() {
	defer close(tr.stopped)
	for {
		select {
		case <-tr.stop:
			return
		default:
		}
		tr.mu.Lock()
		tr.iter++
		i, nlive := tr.iter, len(tr.live)
		tr.mu.Unlock()
		if nlive < topoLive && (nlive < topoLive/2 || i%3 != 0) {
			tr.login()
		}
		tr.publishRandom()
		if i%3 == 0 && nlive > topoLive/3 {
			tr.revokeRandom(i / 3 % 3)
		}
		select {
		case <-tr.stop:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Who a request of the traffic authenticates as.
const (
	asNobody = "-" // a login
	asServer = ""  // the server API key
)

// req sends a request through the load balancer with the session cookie
// (or asNobody, or asServer); it returns the status (0 on a transport
// error), the response and its body.
func (tr *topoTraffic) req(method, path, cookie string, body any) (int, *http.Response, []byte) {
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, tr.tc.URL()+path, rd)
	if err != nil {
		tr.t.Errorf("request: %v", err)
		return 0, nil, nil
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", tr.tc.URL())
	switch cookie {
	case asNobody:
	case asServer:
		req.Header.Set("Authorization", "Bearer "+tr.tc.APIKey)
	default:
		req.Header.Set("Cookie", "sg_session="+cookie)
	}
	resp, err := tr.client.Do(req)
	if err != nil {
		return 0, nil, nil
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(resp.Body)
	return resp.StatusCode, resp, buf.Bytes()
}

func (tr *topoTraffic) count(f func(s *topoStats)) {
	tr.mu.Lock()
	f(&tr.stats)
	tr.mu.Unlock()
}

// login logs a new user in through the load balancer and opens a socket
// on every instance.
func (tr *topoTraffic) login() {
	tr.mu.Lock()
	tr.n++
	user := "topo-" + strconv.Itoa(tr.n)
	tr.mu.Unlock()
	s, err := loginTopo(tr.tc, tr, user)
	if err != nil {
		tr.count(func(st *topoStats) { st.loginFailed++ })
		return
	}
	tr.mu.Lock()
	tr.live = append(tr.live, s)
	tr.stats.logins++
	tr.mu.Unlock()
}

// loginTopo logs user in and dials a socket to every instance.
func loginTopo(tc *testCluster, tr *topoTraffic, user string) (*topoSession, error) {
	code, resp, body := tr.req(http.MethodPost, "/auth/login", asNobody, map[string]string{"user_id": user, "password": "x"})
	if code != http.StatusOK {
		return nil, fmt.Errorf("login %s: HTTP %d %s", user, code, body)
	}
	s := &topoSession{user: user, ackedAt: time.Now()}
	for _, c := range resp.Cookies() {
		if c.Name == "sg_session" && c.Value != "" {
			s.cookie = c.Value
		}
	}
	if s.cookie == "" {
		tc.t.Errorf("login %s: no session cookie", user)
		return nil, fmt.Errorf("no cookie")
	}
	tc.addSecret(s.cookie, "session cookie of "+user)
	code, _, body = tr.req(http.MethodGet, "/auth/session", s.cookie, nil)
	var info struct {
		Handle string `json:"handle"`
	}
	if code != http.StatusOK || json.Unmarshal(body, &info) != nil || info.Handle == "" {
		return nil, fmt.Errorf("session of %s: HTTP %d", user, code)
	}
	s.handle = info.Handle
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, g := range tc.Gateways {
		c, err := dialTopo(ctx, tc, g, s.cookie)
		if err != nil {
			s.closeAll()
			return nil, err
		}
		s.conns = append(s.conns, c)
	}
	return s, nil
}

func (s *topoSession) closeAll() {
	for _, c := range s.conns {
		c.close()
	}
}

func (tr *topoTraffic) publishRandom() {
	tr.mu.Lock()
	if len(tr.live) == 0 {
		tr.mu.Unlock()
		return
	}
	s := tr.live[tr.rnd.IntN(len(tr.live))]
	tr.mu.Unlock()
	code, _, _ := tr.req(http.MethodPost, "/api/v1/publish", asServer, map[string]any{
		"target": map[string]string{"user_id": s.user}, "event": "load", "data": map[string]int{"n": 1}})
	tr.count(func(st *topoStats) {
		if code == http.StatusAccepted {
			st.publishes++
		} else {
			st.publishFailed++
		}
	})
}

// revokeRandom revokes a random live session: by handle (server API), by
// user (server API) or by logout (the session's cookie).
func (tr *topoTraffic) revokeRandom(kind int) {
	tr.mu.Lock()
	if len(tr.live) == 0 {
		tr.mu.Unlock()
		return
	}
	i := tr.rnd.IntN(len(tr.live))
	s := tr.live[i]
	tr.live = append(tr.live[:i], tr.live[i+1:]...)
	tr.mu.Unlock()
	var code int
	switch kind {
	case 0:
		s.revokeKind = "session"
		code, _, _ = tr.req(http.MethodDelete, "/api/v1/sessions/"+s.handle, asServer, nil)
	case 1:
		s.revokeKind = "user"
		code, _, _ = tr.req(http.MethodDelete, "/api/v1/users/"+s.user+"/sessions", asServer, nil)
	default:
		s.revokeKind = "logout"
		code, _, _ = tr.req(http.MethodPost, "/auth/logout", s.cookie, nil)
	}
	switch {
	case code == http.StatusAccepted:
		s.pending = true
	case code >= 200 && code < 300, code == http.StatusNotFound:
		// 404: the session was gone already (lost): its sockets must
		// close within a sweep all the same.
		s.confirmedAt = time.Now()
	default:
		s.unknown = true
	}
	tr.mu.Lock()
	tr.revoked = append(tr.revoked, s)
	tr.stats.revocations++
	if s.pending {
		tr.stats.revokePending++
	}
	if s.unknown {
		tr.stats.revokeFailed++
	}
	tr.mu.Unlock()
}

// topoRun is one topology's fault sequence.
type topoRun struct {
	t    *testing.T
	tc   *testCluster
	tr   *topoTraffic
	pids map[string]int
	lost int
	// seen: each gateway's counters as last read by delta, by "id metric".
	seen map[string]int
}

func newTopoRun(t *testing.T, tc *testCluster) *topoRun {
	r := &topoRun{t: t, tc: tc, tr: newTopoTraffic(t, tc), pids: map[string]int{}, seen: map[string]int{}}
	for _, g := range tc.Gateways {
		r.pids[g.ID] = g.Pid()
	}
	return r
}

// fault runs one fault while the traffic flows, then checks everything.
// inject returns once the topology is healthy again.
func (r *topoRun) fault(name string, inject func(ctx context.Context) error) {
	t := r.t
	t.Helper()
	t.Logf("fault %q: starting traffic", name)
	r.tr.start()
	r.tr.waitIterations(5)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	if err := inject(ctx); err != nil {
		r.tr.stopTraffic()
		t.Fatalf("fault %q: %v", name, err)
	}
	healed := time.Now()
	t.Logf("fault %q: topology healthy again after %s", name, healed.Sub(start).Round(time.Millisecond))
	// Traffic on the healed topology too, then a still picture to check.
	r.tr.waitIterations(5)
	r.tr.stopTraffic()
	r.check(name, start, healed)
}

// check asserts the four promises after a fault that started at start and
// was healed at healed.
func (r *topoRun) check(name string, start, healed time.Time) {
	t := r.t
	t.Helper()
	tc := r.tc
	api := tc.apiHeader()
	inWindow := func(at time.Time) bool { return !at.Before(start.Add(-replicationWindow)) && !at.After(healed) }

	// /readyz ok on every instance: the store answers and pub/sub
	// delivers the instance's own heartbeat.
	for _, g := range tc.Gateways {
		eventually(t, 2*generous, g.ID+" /readyz ok with pub/sub live", func() error {
			var out struct {
				Status string `json:"status"`
				Checks map[string]struct {
					Status string `json:"status"`
				} `json:"checks"`
			}
			code := tc.do(http.MethodGet, g.URL()+"/readyz", nil, nil, &out)
			if code != http.StatusOK || out.Checks["pubsub"].Status != "live" {
				return fmt.Errorf("HTTP %d %+v", code, out)
			}
			return nil
		})
	}

	// Revocations whose request failed are repeated (as a client would);
	// those answered 202 are confirmed when the store no longer has the
	// session.
	r.tr.mu.Lock()
	revoked := r.tr.revoked
	r.tr.revoked = nil
	live := r.tr.live
	stats := r.tr.stats
	r.tr.mu.Unlock()
	for _, s := range revoked {
		if s.unknown {
			code := tc.do(http.MethodDelete, tc.Gateways[0].URL()+"/api/v1/sessions/"+s.handle, api, nil, nil)
			switch code {
			case http.StatusNoContent, http.StatusNotFound:
				s.confirmedAt = time.Now()
			case http.StatusAccepted:
				s.pending = true
			default:
				t.Errorf("repeated revocation of %s: HTTP %d", shortH(s.handle), code)
			}
		}
		if s.pending {
			eventually(t, 2*generous, "pending revocation confirmed", func() error {
				if code := tc.do(http.MethodGet, tc.Gateways[0].URL()+"/api/v1/sessions/"+s.handle, api, nil, nil); code != http.StatusNotFound {
					return fmt.Errorf("session still there: HTTP %d", code)
				}
				return nil
			})
			s.confirmedAt = time.Now()
		}
	}

	// Every revoked session closed on every instance within a sweep.
	undone, codes := 0, map[websocket.StatusCode]int{}
	for _, s := range revoked {
		from := s.confirmedAt
		if from.Before(healed) && !from.Before(start) {
			from = healed // confirmed while the topology was failing over
		}
		if inWindow(s.ackedAt) && from.Before(s.ackedAt.Add(topoStoreTimeout)) {
			// A login the failover may have unindexed (revoking its user
			// misses it) is checked once it is older than STORE_TIMEOUT.
			from = s.ackedAt.Add(topoStoreTimeout)
		}
		deadline := from.Add(topoReconcile + topoSlack)
		for _, c := range s.conns {
			if !c.waitClosed(deadline) {
				code := tc.do(http.MethodGet, tc.Gateways[0].URL()+"/api/v1/sessions/"+s.handle, api, nil, nil)
				t.Errorf("revoked session %s (%s, confirmed %s before the fault's end) still open on %s %s past its bound (store: HTTP %d)",
					shortH(s.handle), s.revokeKind, healed.Sub(s.confirmedAt).Round(time.Millisecond), c.instance, time.Since(deadline).Round(time.Millisecond), code)
				continue
			}
			_, code, at := c.closed()
			codes[code]++
			if at.After(deadline) {
				t.Errorf("revoked session %s (%s) closed on %s %s past its bound", shortH(s.handle), s.revokeKind, c.instance, at.Sub(deadline))
			}
		}
		// A delete a failing master acknowledged before its replica got
		// it is undone by the failover: the instances holding the
		// session's tombstone revoke it again within a sweep.
		eventually(t, max(time.Until(healed.Add(topoReconcile+topoSlack)), topoReconcile), "revoked session "+shortH(s.handle)+" gone from the store", func() error {
			if code := tc.do(http.MethodGet, tc.Gateways[0].URL()+"/api/v1/sessions/"+s.handle, api, nil, nil); code != http.StatusNotFound {
				return fmt.Errorf("HTTP %d", code)
			}
			return nil
		})
		s.closeAll()
	}
	undone = r.delta("sessiongate_revocations_undone_total")

	// A login in the window whose user-index entry the failover lost is
	// revoked by the pass that finds it (once older than STORE_TIMEOUT):
	// let every instance finish a pass that started after that.
	r.awaitReconcile(healed.Add(topoStoreTimeout))
	unindexed := r.delta("sessiongate_sessions_unindexed_total")

	// Every valid session still valid, its sockets open (or asked to
	// reconnect); a lost one only from the replication window.
	var kept []*topoSession
	lost, reconnects := 0, 0
	ctx, cancel := context.WithTimeout(context.Background(), 2*generous)
	defer cancel()
	for _, s := range live {
		code := tc.do(http.MethodGet, tc.Gateways[0].URL()+"/api/v1/sessions/"+s.handle, api, nil, nil)
		if code == http.StatusNotFound {
			lost++
			if !inWindow(s.ackedAt) {
				t.Errorf("valid session %s lost, acknowledged %s before the fault: outside the replication window", shortH(s.handle), start.Sub(s.ackedAt).Round(time.Millisecond))
			} else {
				t.Logf("valid session %s lost: acknowledged within the replication window", shortH(s.handle))
			}
			s.closeAll()
			continue
		}
		if code != http.StatusOK {
			t.Errorf("valid session %s: HTTP %d", shortH(s.handle), code)
			continue
		}
		for i, c := range s.conns {
			ok, cc, _ := c.closed()
			if !ok {
				continue
			}
			switch cc {
			case 4010, 4000, 4001, websocket.StatusGoingAway:
				// Reconnect and resume (history), as the client library does.
				reconnects++
				g := tc.Gateway(c.instance)
				nc, err := dialTopo(ctx, tc, g, s.cookie)
				if err != nil {
					t.Errorf("valid session %s: reconnect to %s after close %d: %v", shortH(s.handle), c.instance, cc, err)
					continue
				}
				s.conns[i] = nc
			default:
				t.Errorf("valid session %s: socket on %s closed with %d", shortH(s.handle), c.instance, cc)
			}
		}
		kept = append(kept, s)
	}
	r.lost += lost
	r.tr.mu.Lock()
	r.tr.live = kept
	r.tr.mu.Unlock()

	// Pub/sub live on every instance: an event published through each
	// instance reaches a fresh socket on every instance.
	r.probe(name)

	// No gateway restarted.
	for _, g := range tc.Gateways {
		if !g.Running() || g.Pid() != r.pids[g.ID] {
			t.Errorf("%s: pid %d running=%v, want the original pid %d", g.ID, g.Pid(), g.Running(), r.pids[g.ID])
		}
	}
	var cs []string
	for c, n := range codes {
		cs = append(cs, fmt.Sprintf("%d:%d", c, n))
	}
	sort.Strings(cs)
	t.Logf("fault %q: traffic %+v; %d revoked sessions checked (close codes %s), %d revocations undone by a failover and revoked again, %d logins unindexed by a failover and revoked, %d valid sessions kept, %d lost (replication window), %d sockets asked to reconnect",
		name, stats, len(revoked), strings.Join(cs, " "), undone, unindexed, len(kept), lost, reconnects)
}

// delta sums, over the gateways, how much counter metric grew since the
// last delta of it.
func (r *topoRun) delta(metric string) int {
	n := 0
	for _, g := range r.tc.Gateways {
		v := int(counterValue(r.t, r.tc, g.URL(), metric))
		n += v - r.seen[g.ID+" "+metric]
		r.seen[g.ID+" "+metric] = v
	}
	return n
}

// awaitReconcile waits until every instance has completed a reconcile
// pass that started at or after after.
func (r *topoRun) awaitReconcile(after time.Time) {
	t := r.t
	t.Helper()
	if d := time.Until(after); d > 0 {
		time.Sleep(d) // a point in time to wait for, not a guess at speed
	}
	for _, g := range r.tc.Gateways {
		// A pass in progress now may have started before: the second
		// completion from here started after.
		want := counterValue(t, r.tc, g.URL(), "sessiongate_reconciles_total") + 2
		eventually(t, 2*generous, g.ID+" reconcile pass", func() error {
			if v := counterValue(t, r.tc, g.URL(), "sessiongate_reconciles_total"); v < want {
				return fmt.Errorf("%v passes, want %v", v, want)
			}
			return nil
		})
	}
}

// probe logs a user in, opens a socket on every instance, publishes one
// marker through each instance and waits until every socket got all.
func (r *topoRun) probe(name string) {
	t := r.t
	t.Helper()
	var s *topoSession
	eventually(t, 2*generous, "probe login", func() error {
		var err error
		s, err = loginTopo(r.tc, r.tr, "probe-"+probeName(name))
		return err
	})
	defer s.closeAll()
	var markers []string
	for _, g := range r.tc.Gateways {
		m := name + " via " + g.ID
		markers = append(markers, m)
		body := map[string]any{"target": map[string]string{"user_id": s.user}, "event": "marker", "data": map[string]string{"marker": m}}
		if code := r.tc.do(http.MethodPost, g.URL()+"/api/v1/publish", r.tc.apiHeader(), body, nil); code != http.StatusAccepted {
			t.Errorf("probe publish via %s: HTTP %d", g.ID, code)
		}
	}
	for _, c := range s.conns {
		eventually(t, generous, "markers on "+c.instance, func() error {
			for _, m := range markers {
				if !c.hasMarker(m) {
					return fmt.Errorf("no %q", m)
				}
			}
			return nil
		})
	}
	if code := r.tc.do(http.MethodDelete, r.tc.Gateways[0].URL()+"/api/v1/users/"+s.user+"/sessions", r.tc.apiHeader(), nil, nil); code != http.StatusOK {
		t.Errorf("probe revoke: HTTP %d", code)
	}
}

// finish closes the live sessions and logs the totals.
func (r *topoRun) finish() {
	r.tr.mu.Lock()
	defer r.tr.mu.Unlock()
	for _, s := range r.tr.live {
		s.closeAll()
	}
	r.t.Logf("all faults: traffic %+v; %d valid sessions lost in replication windows", r.tr.stats, r.lost)
}

// counterValue reads an unlabelled counter from an instance's /metrics.
func counterValue(t *testing.T, tc *testCluster, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("%s/metrics: %v", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s/metrics: HTTP %d %v", base, resp.StatusCode, err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s/metrics: %q: %v", base, line, err)
			}
			return f
		}
	}
	t.Fatalf("%s/metrics: no %s", base, name)
	return 0
}

func shortH(h string) string {
	if len(h) > 8 {
		return h[:8]
	}
	return h
}

// probeName turns a fault's name into a user id: letters, digits and "-".
func probeName(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, name)
}
