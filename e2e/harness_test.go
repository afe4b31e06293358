//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/e2e/internal/cluster"
	"github.com/sessiongate/sessiongate/internal/logschema"
)

// testCluster is a cluster owned by one test, plus the secrets the test saw
// (cookie values, session tokens): at cleanup, after every process stopped,
// no log file may contain any of them.
type testCluster struct {
	*cluster.Cluster
	t      *testing.T
	client *http.Client

	mu      sync.Mutex
	secrets map[string]string // value -> where it came from
}

// startCluster starts a cluster for t and registers its stop and the log
// check with t.Cleanup. Logs live in a directory kept (and named in the test
// output) when the test fails.
func startCluster(t *testing.T, o cluster.Options) *testCluster {
	t.Helper()
	requireSuite(t)
	dir, err := os.MkdirTemp("", "sg-e2e-"+strings.ReplaceAll(t.Name(), "/", "_")+"-")
	if err != nil {
		t.Fatal(err)
	}
	o.Dir = dir
	o.GatewayBin = suite.gatewayBin
	o.WorkerBin = suite.workerBin
	o.Logf = t.Logf
	tc := &testCluster{t: t, secrets: map[string]string{}, client: &http.Client{Timeout: 10 * time.Second}}
	t.Cleanup(func() {
		if tc.Cluster != nil {
			tc.checkLogs()
		}
		if t.Failed() {
			t.Logf("logs kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := cluster.Start(ctx, o)
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	tc.Cluster = c
	t.Cleanup(c.Close)
	for _, s := range c.Secrets() {
		tc.addSecret(s, "cluster configuration")
	}
	return tc
}

// addSecret records a value that must never appear in any log.
func (tc *testCluster) addSecret(v, from string) {
	if len(v) < 16 {
		tc.t.Fatalf("secret from %s is too short to search for: %d bytes", from, len(v))
	}
	tc.mu.Lock()
	tc.secrets[v] = from
	tc.mu.Unlock()
}

// checkLogs greps every process's log for every recorded secret.
func (tc *testCluster) checkLogs() {
	tc.t.Helper()
	start := time.Now()
	tc.Close() // flush: every process has exited
	tc.t.Logf("cluster stopped in %s", time.Since(start).Round(time.Millisecond))
	tc.mu.Lock()
	defer tc.mu.Unlock()
	sessionSecrets := 0
	for _, from := range tc.secrets {
		if from != "cluster configuration" {
			sessionSecrets++
		}
	}
	for _, path := range tc.LogFiles() {
		b, err := os.ReadFile(path)
		if err != nil {
			tc.t.Errorf("read log %s: %v", path, err)
			continue
		}
		for v, from := range tc.secrets {
			if bytes.Contains(b, []byte(v)) {
				tc.t.Errorf("log %s contains a secret (%s)", filepath.Base(path), from)
			}
		}
	}
	tc.t.Logf("log check: %d log files clean of %d secrets (%d cookie values/session tokens)", len(tc.LogFiles()), len(tc.secrets), sessionSecrets)
	tc.checkLogSchema()
}

// checkLogSchema checks every line of every gateway's and worker's log
// against the log schema (docs/LOGS.md): one JSON object with unique keys,
// a known event, its level and its typed fields. The example worker logs
// with the gateway's zap configuration and its events are in the schema, so
// its lines are held to the same bar.
func (tc *testCluster) checkLogSchema() {
	tc.t.Helper()
	events := logschema.Events()
	var procs []*cluster.Process
	for _, g := range tc.Gateways {
		procs = append(procs, g.Process)
	}
	for _, w := range tc.Workers {
		procs = append(procs, w.Process)
	}
	lines, bad := 0, 0
	for _, p := range procs {
		b, err := os.ReadFile(p.LogPath)
		if err != nil {
			tc.t.Errorf("read log %s: %v", p.LogPath, err)
			continue
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			// Blank lines and the harness's own "=== cluster: ..." markers
			// (written between a process's runs) are not the process's.
			if len(bytes.TrimSpace(line)) == 0 || bytes.HasPrefix(line, []byte("=== cluster:")) {
				continue
			}
			lines++
			if err := logschema.Check(line, events); err != nil {
				if bad++; bad <= 20 {
					tc.t.Errorf("log %s breaks the log schema: %v\n\t%.400s", filepath.Base(p.LogPath), err, line)
				}
			}
		}
	}
	if lines == 0 {
		tc.t.Errorf("log schema: no gateway log line to check")
	}
	tc.t.Logf("log schema: %d log lines of %d gateways and %d workers checked, %d bad", lines, len(tc.Gateways), len(tc.Workers), bad)
}

// other returns a running instance that is not id.
func (tc *testCluster) other(id string) *cluster.Gateway {
	tc.t.Helper()
	for _, g := range tc.Gateways {
		if g.ID != id && g.Running() {
			return g
		}
	}
	tc.t.Fatalf("no running instance other than %s", id)
	return nil
}

// do sends a JSON request and decodes a JSON answer into out (if not nil).
func (tc *testCluster) do(method, url string, hdr http.Header, body, out any) int {
	tc.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			tc.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		tc.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := tc.client.Do(req)
	if err != nil {
		tc.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			tc.t.Fatalf("%s %s: %d %s: %v", method, url, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

func (tc *testCluster) apiHeader() http.Header {
	return http.Header{"Authorization": {"Bearer " + tc.APIKey}}
}

type publishResult struct {
	ID             string `json:"id"`
	DeliveredLocal int    `json:"delivered_local"`
}

// publish sends an event to a user through the server API of instance g
// (directly, not through the load balancer).
func (tc *testCluster) publish(g *cluster.Gateway, userID, event string, data any) publishResult {
	tc.t.Helper()
	var out publishResult
	body := map[string]any{"target": map[string]any{"user_id": userID}, "event": event, "data": data}
	if code := tc.do(http.MethodPost, g.URL()+"/api/v1/publish", tc.apiHeader(), body, &out); code != http.StatusAccepted {
		tc.t.Fatalf("publish via %s: HTTP %d", g.ID, code)
	}
	return out
}

// revokeUser revokes every session of a user through instance g's API.
func (tc *testCluster) revokeUser(g *cluster.Gateway, userID string) {
	tc.t.Helper()
	if code := tc.do(http.MethodDelete, g.URL()+"/api/v1/users/"+userID+"/sessions", tc.apiHeader(), nil, nil); code != http.StatusOK {
		tc.t.Fatalf("revoke user via %s: HTTP %d", g.ID, code)
	}
}

// eventually polls fn until it returns nil, failing the test with its last
// error after timeout.
func eventually(t *testing.T, timeout time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logContains reports whether any of the files contains all the substrings
// on one line.
func logContains(files []string, subs ...string) bool {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
	lines:
		for _, line := range strings.Split(string(b), "\n") {
			for _, s := range subs {
				if !strings.Contains(line, s) {
					continue lines
				}
			}
			return true
		}
	}
	return false
}
