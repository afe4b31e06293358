//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/sessiongate/sessiongate/e2e/internal/cluster"
)

// lbKinds are the load balancers the scenarios that exercise the load
// balancer run behind (issue 13): both configured from deploy/.
func lbKinds() []string { return []string{cluster.LBHAProxy, cluster.LBNginx} }

// forEachLB runs f as one subtest per load balancer, each with its own
// cluster: the scenarios whose claims depend on the load balancer
// (connects spread over instances, drains, X-Forwarded-For, TLS) hold
// behind haproxy and behind nginx.
func forEachLB(t *testing.T, f func(t *testing.T, lb string)) {
	t.Helper()
	for _, lb := range lbKinds() {
		t.Run(lb, func(t *testing.T) { f(t, lb) })
	}
}

// lbLogin logs userID in through the load balancer (development
// authenticator) and returns the session cookie's value.
func (tc *testCluster) lbLogin(userID string) (string, error) {
	req, err := http.NewRequest(http.MethodPost, tc.URL()+"/auth/login", strings.NewReader(fmt.Sprintf(`{"user_id":%q}`, userID)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", tc.URL())
	resp, err := tc.client.Do(req)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("login %s: HTTP %d", userID, resp.StatusCode)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "sg_session" {
			return c.Value, nil
		}
	}
	return "", fmt.Errorf("login %s: no sg_session cookie", userID)
}

// lbConnect opens a WebSocket through the load balancer with a session
// cookie and returns it with its welcome; any refusal is an error.
func (tc *testCluster) lbConnect(ctx context.Context, cookie string) (*websocket.Conn, welcome, error) {
	wsURL := strings.Replace(tc.URL(), "http://", "ws://", 1) + "/ws"
	h := http.Header{"Origin": {tc.URL()}, "Cookie": {"sg_session=" + cookie}}
	c, resp, err := websocket.Dial(ctx, wsURL, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		return nil, welcome{}, fmt.Errorf("handshake: HTTP %d: %w", status, err)
	}
	_, msg, err := c.Read(ctx)
	if err != nil {
		c.CloseNow()
		return nil, welcome{}, fmt.Errorf("welcome: %w", err)
	}
	var w welcome
	if err := json.Unmarshal(msg, &w); err != nil || w.Instance == "" {
		c.CloseNow()
		return nil, welcome{}, fmt.Errorf("first frame %s", msg)
	}
	return c, w, nil
}

// Readiness-based removal during a drain, behind each load balancer: from
// the moment an instance drains (SIGTERM: /readyz 503, new WebSockets 503,
// the listener open for DRAIN_WINDOW), every new login and WebSocket
// through the load balancer succeeds, and every WebSocket lands on another
// instance. Until haproxy's /readyz checks take the instance out, and
// always with nginx, which has no active checks, that is the load
// balancer resending the refused handshake to another instance (haproxy
// retry-on 503, nginx proxy_next_upstream http_503; without them the first
// connect fails with 503). With nginx the draining instance's log must
// show it refused a WebSocket that the client never saw fail; haproxy's
// checks must then see the instance DOWN.
func TestDrainNewConnectionsGoElsewhere(t *testing.T) {
	forEachLB(t, func(t *testing.T, lb string) {
		tc := startCluster(t, cluster.Options{LB: lb, Env: map[string]string{
			// A window far longer than the connects below take, even on a
			// loaded machine: the draining instance keeps listening (and
			// answering 503) throughout; it is killed at the end.
			"DRAIN_WINDOW":     "60s",
			"SHUTDOWN_TIMEOUT": "90s",
		}})
		ctx, cancel := context.WithTimeout(context.Background(), 2*generous)
		defer cancel()
		victim := tc.Gateways[1]
		if err := victim.Terminate(); err != nil {
			t.Fatal(err)
		}
		eventually(t, generous, victim.ID+" drains (/readyz 503)", func() error {
			if code := tc.do(http.MethodGet, victim.URL()+"/readyz", nil, nil, nil); code != http.StatusServiceUnavailable {
				return fmt.Errorf("/readyz %d", code)
			}
			return nil
		})
		// No waiting for the load balancer to notice: clients connect
		// from the moment the drain starts.
		const n = 12
		landed := map[string]int{}
		for i := range n {
			user := fmt.Sprintf("drain-user-%d", i)
			cookie, err := tc.lbLogin(user)
			if err != nil {
				t.Fatalf("connect %d during the drain: %v", i, err)
			}
			tc.addSecret(cookie, "session cookie of "+user)
			c, w, err := tc.lbConnect(ctx, cookie)
			if err != nil {
				t.Fatalf("connect %d during the drain: %v", i, err)
			}
			c.Close(websocket.StatusNormalClosure, "")
			if w.Instance == victim.ID {
				t.Errorf("connect %d landed on the draining instance %s", i, victim.ID)
			}
			landed[w.Instance]++
		}
		if !victim.Running() {
			t.Fatalf("%s stopped listening before the connects were done: the test did not exercise the drain window", victim.ID)
		}
		t.Logf("behind %s, %d connects during the drain of %s landed on %v", lb, n, victim.ID, landed)
		if h := tc.LB.HAProxy(); h != nil {
			// And haproxy's health checks take the instance out.
			if err := h.WaitDown(ctx, victim.ID); err != nil {
				t.Fatal(err)
			}
		}
		refused := logContains([]string{victim.LogPath}, `"msg":"http request"`, `"path":"/ws"`, `"status":503`)
		t.Logf("the draining instance refused a WebSocket the load balancer then sent elsewhere: %v", refused)
		if lb == cluster.LBNginx {
			eventually(t, generous, victim.ID+" logs a refused WebSocket", func() error {
				if !logContains([]string{victim.LogPath}, `"msg":"http request"`, `"path":"/ws"`, `"status":503`) {
					return errors.New("no /ws 503 in the draining instance's log: nginx never tried it")
				}
				return nil
			})
		}
		victim.Kill()
	})
}

// Both deploy configurations keep /metrics off the public side: through
// the load balancer it is a 404, while the instance itself serves it.
func TestLBHidesMetrics(t *testing.T) {
	forEachLB(t, func(t *testing.T, lb string) {
		tc := startCluster(t, cluster.Options{LB: lb, Instances: 1})
		if code := tc.do(http.MethodGet, tc.Gateways[0].URL()+"/metrics", nil, nil, nil); code != http.StatusOK {
			t.Fatalf("/metrics on the instance itself: HTTP %d, want 200", code)
		}
		if code := tc.do(http.MethodGet, tc.URL()+"/metrics", nil, nil, nil); code != http.StatusNotFound {
			t.Fatalf("/metrics through %s: HTTP %d, want 404", lb, code)
		}
	})
}
