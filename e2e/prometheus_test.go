//go:build e2e

package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sessiongate/sessiongate/e2e/internal/cluster"
)

// A real Prometheus scrapes three real instances (and loads
// deploy/prometheus/sessiongate.rules.yml) while traffic exercises every
// metric the rules and the dashboard use: logins, connections on every
// instance, publishes, a resume, client messages through the inbound queue
// and a worker, a refused handshake, a revocation closing sockets on other
// instances, a session the reconciler finds gone, a slow consumer. Then every rule's expression (as Prometheus
// parsed it from the file) and every panel query of
// deploy/grafana/sessiongate.json (template variables substituted) must
// return series, and every metric selector in them too: no typo'd metric,
// no dead panel. The test polls until the scrapes have the data.
func TestPrometheusRulesAndDashboard(t *testing.T) {
	rulesPath := filepath.Join(suite.repoRoot, "deploy", "prometheus", "sessiongate.rules.yml")
	dashPath := filepath.Join(suite.repoRoot, "deploy", "grafana", "sessiongate.json")
	tc := startCluster(t, cluster.Options{
		Workers:    1,
		Prometheus: &cluster.PrometheusOptions{Rules: []string{rulesPath}},
		Env: map[string]string{
			// A small queue the slow consumer fills. Its close (4000) is
			// counted once the close handshake gave up on it, after the
			// write it is blocked in times out (WS_WRITE_TIMEOUT, 10s).
			"WS_SEND_QUEUE": "16",
			// The heartbeat must not close it first (it never answers
			// pings), however slowly the machine publishes.
			"WS_PONG_TIMEOUT": "10m",
		},
	})
	gw1, gw2, gw3 := tc.Gateways[0], tc.Gateways[1], tc.Gateways[2]

	// Connections on every instance; alice has one on each.
	alice := tc.createSession("alice")
	var aliceWS []*wsClient
	for _, g := range tc.Gateways {
		w := dialWS(t, g, alice, "")
		if f := w.next(t); f.Type != "welcome" {
			t.Fatalf("alice on %s: first frame %s", g.ID, f)
		}
		aliceWS = append(aliceWS, w)
	}
	// Publishes (fan-out, history appends, bus events) and a resume
	// that replays the last two of them.
	first := tc.publishPos(gw1, "alice", "hello", map[string]any{"n": 1})
	tc.publishPos(gw2, "alice", "hello", map[string]any{"n": 2})
	tc.publishPos(gw3, "alice", "hello", map[string]any{"n": 3})
	resumed := dialWS(t, gw2, alice, fmt.Sprintf("resume_user=%s:%d", first.Epoch, first.Offset))
	if f := resumed.next(t); f.Type != "welcome" || f.Recovered == nil || !*f.Recovered {
		t.Fatalf("resume: welcome %s, want recovered", f)
	}
	// A client message through the inbound queue: acked, and the worker
	// answers it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := aliceWS[0].c.Write(ctx, websocket.MessageText, []byte(`{"type":"message","id":"m1","data":{"hello":"worker"}}`)); err != nil {
		t.Fatal(err)
	}
	// A refused handshake: a forged token.
	if code, body := rawHandshake(t, gw1.URL()+"/ws", "forged.token"); code != http.StatusUnauthorized {
		t.Fatalf("forged token handshake: %d %s, want 401", code, body)
	}
	// A revocation through gw1 closes bob's sockets on gw2 and gw3 from
	// the bus (the revocation-to-close histogram).
	bob := tc.createSession("bob")
	bob2, bob3 := dialRaw(t, gw2, bob), dialRaw(t, gw3, bob)
	defer bob2.CloseNow()
	defer bob3.CloseNow()
	tc.revokeUser(gw1, "bob")
	for _, c := range []*websocket.Conn{bob2, bob3} {
		if code := readUntilClosed(t, c); code != 4500 {
			t.Fatalf("bob's socket closed with %d, want 4500", code)
		}
	}
	// A session deleted behind the gateways' back (as a revocation pub/sub
	// lost would leave it): the reconciler's sweep finds it gone and
	// closes its socket.
	var dave struct {
		Token  string `json:"token"`
		Handle string `json:"handle"`
	}
	if code := tc.do(http.MethodPost, gw1.URL()+"/api/v1/sessions", tc.apiHeader(), map[string]any{"user_id": "dave"}, &dave); code != http.StatusCreated {
		t.Fatalf("create session for dave: HTTP %d", code)
	}
	tc.addSecret(dave.Token, "session token of dave")
	daveWS := dialRaw(t, gw2, dave.Token)
	defer daveWS.CloseNow()
	if reply, err := tc.Redis.Do("DEL sge2e:s:" + dave.Handle); err != nil || reply != ":1" {
		t.Fatalf("DEL dave's session key: %q, %v", reply, err)
	}
	if code := readUntilClosed(t, daveWS); code != 4500 {
		t.Fatalf("dave's socket closed with %d, want 4500 (by the reconciler)", code)
	}
	// A slow consumer: carol never reads; publishing to her fills her
	// queue (half full first) until gw3 closes her with 4000 (publishes
	// after the close reach nobody).
	carol := tc.createSession("carol")
	dialNeverRead(t, gw3, carol)
	blob := strings.Repeat("z", 16<<10)
	closed := regexp.MustCompile(`(?m)^sessiongate_queue_full_closes_total [1-9]`)
	for i := 0; ; i++ {
		if i == 20000 {
			t.Fatal("20000 publishes to a client that never reads: no 4000 close counted")
		}
		tc.publish(gw3, "carol", "flood", map[string]any{"blob": blob})
		if i%20 == 19 && closed.MatchString(scrape(t, gw3)) {
			break
		}
	}

	prom := promClient{base: tc.Prom.URL(), client: &http.Client{Timeout: 10 * time.Second}}
	checks := map[string]func(context.Context) error{}
	hasSeries := func(expr string) func(context.Context) error {
		return func(ctx context.Context) error {
			n, err := prom.series(ctx, expr)
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("no series")
			}
			return nil
		}
	}
	addSelectors := func(expr string) {
		for _, sel := range metricSelectors(expr) {
			checks["selector "+sel] = hasSeries(sel)
		}
	}

	// The traffic reached the metrics (as Prometheus scraped them).
	for _, e := range []string{
		`sessiongate_connects_total > 0`,
		`sessiongate_handshakes_refused_total{reason="unauthorized"} > 0`,
		`sessiongate_revocations_total{kind="user"} > 0`,
		`sessiongate_revocation_close_seconds_count > 0`,
		`sessiongate_send_queue_high_total > 0`,
		`sessiongate_queue_full_closes_total > 0`,
		`sessiongate_reconcile_closed_total > 0`,
		`sessiongate_resumes_total{result="recovered"} > 0`,
		`sessiongate_resume_replayed_events_total > 0`,
		`sessiongate_inbound_messages_total{result="queued"} > 0`,
		`sessiongate_messages_sent_total > 0`,
		`sessiongate_history_appends_total > 0`,
		`sessiongate_pubsub_live == 1`,
		`sessiongate_redis_connected == 1`,
		`sessiongate_cluster_instances{state="alive"} == 3`,
	} {
		checks["traffic "+e] = hasSeries(e)
	}

	// Every rule, as Prometheus loaded it from the file.
	wantRules := countRules(t, rulesPath)
	var rules []promRule
	eventually(t, generous, "prometheus loads every rule", func() error {
		var err error
		if rules, err = prom.rules(ctx); err != nil {
			return err
		}
		if len(rules) != wantRules {
			return fmt.Errorf("%d rules loaded, %d in %s", len(rules), wantRules, rulesPath)
		}
		return nil
	})
	for _, r := range rules {
		addSelectors(r.Query)
		switch r.Type {
		case "recording":
			checks["recording rule "+r.Name] = hasSeries(r.Query)
			checks["recorded series "+r.Name] = hasSeries(r.Name)
		default:
			// An alert's expression is empty while it does not fire: it
			// must be valid PromQL (Prometheus answers it) and its
			// selectors must return series (above).
			checks["alert "+r.Name] = func(ctx context.Context) error {
				_, err := prom.series(ctx, r.Query)
				return err
			}
		}
		checks["rule health "+r.Name] = func(ctx context.Context) error {
			rs, err := prom.rules(ctx)
			if err != nil {
				return err
			}
			for _, x := range rs {
				if x.Name == r.Name && x.Health == "err" {
					return fmt.Errorf("evaluation failed: %s", x.Error)
				}
			}
			return nil
		}
	}

	// Every dashboard panel's queries.
	dash, err := loadDashboard(dashPath)
	if err != nil {
		t.Fatal(err)
	}
	var vals map[string]string
	eventually(t, generous, "dashboard variables resolve", func() error {
		vals, err = dash.resolveVariables(ctx, prom)
		return err
	})
	targets := 0
	for _, p := range dash.panels() {
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource is not the ${datasource} variable", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			expr, unknown := substitute(tg.Expr, vals)
			if len(unknown) > 0 {
				t.Errorf("panel %q query %s: unknown variables %v", p.Title, tg.RefID, unknown)
				continue
			}
			targets++
			checks[fmt.Sprintf("panel %q query %s: %s", p.Title, tg.RefID, expr)] = hasSeries(expr)
			addSelectors(expr)
		}
	}
	if targets == 0 {
		t.Fatal("no panel query in the dashboard")
	}
	t.Logf("%d rules, %d panel queries, %d checks against %s", len(rules), targets, len(checks), prom.base)

	if fails := waitAllSeries(ctx, 4*generous, checks); len(fails) > 0 {
		t.Fatalf("%d of %d checks never passed:\n%s", len(fails), len(checks), strings.Join(fails, "\n"))
	}
}

// countRules counts the record: and alert: entries of a rule file.
func countRules(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return len(regexp.MustCompile(`(?m)^\s*- (record|alert):`).FindAll(b, -1))
}

// readUntilClosed reads c until its connection closes and returns the
// close code (-1 for an abrupt close).
func readUntilClosed(t *testing.T, c *websocket.Conn) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), generous)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Fatalf("socket not closed within %s", generous)
			}
			return int(websocket.CloseStatus(err))
		}
	}
}

// dialRaw opens a WebSocket (with coder/websocket) that the test reads
// only when it says so.
func dialRaw(t *testing.T, g *cluster.Gateway, token string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), generous)
	defer cancel()
	url := strings.Replace(g.URL(), "http://", "ws://", 1) + "/ws"
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		t.Fatalf("dial %s: %v", g.ID, err)
	}
	return c
}

// dialNeverRead completes a WebSocket handshake over a bare TCP socket and
// returns it: nothing ever reads it past the handshake's answer. Its
// receive buffer is small (on loopback the kernel would otherwise let it
// grow to tens of MB), so the server's writes block soon.
func dialNeverRead(t *testing.T, g *cluster.Gateway, token string) net.Conn {
	t.Helper()
	dialer := &net.Dialer{Timeout: generous, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4<<10)
		}); err != nil {
			return err
		}
		return serr
	}}
	conn, err := dialer.Dial("tcp", strings.TrimPrefix(g.URL(), "http://"))
	if err != nil {
		t.Fatalf("dial %s: %v", g.ID, err)
	}
	t.Cleanup(func() { conn.Close() })
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	req := "GET /ws HTTP/1.1\r\nHost: " + strings.TrimPrefix(g.URL(), "http://") + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key) + "\r\n" +
		"Authorization: Bearer " + token + "\r\n\r\n"
	_ = conn.SetDeadline(time.Now().Add(generous))
	if _, err := conn.Write([]byte(req)); err != nil {
		t.Fatalf("handshake to %s: %v", g.ID, err)
	}
	// Read the answer's head byte by byte: nothing past it is consumed.
	var head []byte
	b := make([]byte, 1)
	for !strings.HasSuffix(string(head), "\r\n\r\n") {
		if _, err := conn.Read(b); err != nil {
			t.Fatalf("handshake answer from %s: %v (%q)", g.ID, err, head)
		}
		head = append(head, b[0])
	}
	if !strings.HasPrefix(string(head), "HTTP/1.1 101") {
		t.Fatalf("handshake answer from %s: %q", g.ID, head)
	}
	_ = conn.SetDeadline(time.Time{})
	return conn
}

// scrape returns an instance's /metrics text.
func scrape(t *testing.T, g *cluster.Gateway) string {
	t.Helper()
	resp, err := http.Get(g.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
