package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

const apiKey = "process-test-api-key-0123456789"

// generous bounds every wait for something that must happen: a hang
// detector that a loaded machine (-race, stress-ng on every core) never
// hits. These tests assert order, never speed.
const generous = 30 * time.Second

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// gatewayBinary builds the real binary once per test process.
func gatewayBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sessiongate-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "gateway")
		out, err := exec.Command("go", "build", "-race", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type proc struct {
	cmd  *exec.Cmd
	addr string
	logs *syncBuffer
	done chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t))
}

func startProc(t *testing.T, env map[string]string) *proc {
	t.Helper()
	bin := gatewayBinary(t)
	p := &proc{addr: env["GATEWAY_ADDR"], logs: &syncBuffer{}, done: make(chan error, 1)}
	p.cmd = exec.Command(bin)
	// The test's entries replace inherited ones (a process reads the first
	// of duplicate entries).
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !hasKey(env, k) {
			p.cmd.Env = append(p.cmd.Env, kv)
		}
	}
	p.cmd.Env = append(p.cmd.Env, "LOG_FORMAT=json")
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("logs of %s:\n%s", env["GATEWAY_INSTANCE_ID"], p.logs.String())
		}
	})
	return p
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}

func (p *proc) waitReady(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(generous)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + p.addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("gateway exited early: %v\n%s", err, p.logs.String())
		default:
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("gateway on %s not ready\n%s", p.addr, p.logs.String())
}

func clusterEnv(redisURL, id, addr string) map[string]string {
	return map[string]string{
		"GATEWAY_ENV":               "development",
		"GATEWAY_ADDR":              addr,
		"GATEWAY_INSTANCE_ID":       id,
		"GATEWAY_API_KEYS":          apiKey,
		"USE_REDIS_SESSIONS":        "true",
		"REDIS_URL":                 redisURL,
		"SESSION_SECRET":            "process-test-secret-0123456789abcdef0123",
		"SESSION_ENCRYPTION_KEY":    strings.Repeat("ab", 32),
		"PUBSUB_HEARTBEAT_INTERVAL": "300ms",
		"RECONCILE_INTERVAL":        "2s",
		"DRAIN_WINDOW":              "300ms",
	}
}

func api(t *testing.T, addr, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, "http://"+addr+path, rd)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func dial(t *testing.T, addr, token string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), generous)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	_, b, err := c.Read(ctx)
	if err != nil || !strings.Contains(string(b), `"welcome"`) {
		t.Fatalf("welcome: %v %s", err, b)
	}
	return c
}

func closeCode(t *testing.T, c *websocket.Conn) websocket.StatusCode {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), generous)
	defer cancel()
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return websocket.CloseStatus(err)
		}
		if strings.Contains(string(b), `"ping"`) {
			_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"pong"}`))
		}
	}
}

// Three real gateway processes on one real redis-server.
func TestProcessesRevocationAndHeartbeats(t *testing.T) {
	// An explicit opt-out for a quick local run only: `make test` never
	// passes -short, and a missing redis-server fails (redistest).
	if testing.Short() {
		t.Skip("-short: skipping the three-process test (it builds and runs the binary); make test runs it")
	}
	rs := redistest.Start(t)
	var ps []*proc
	for _, id := range []string{"p-a", "p-b", "p-c"} {
		ps = append(ps, startProc(t, clusterEnv(rs.URL(), id, freeAddr(t))))
	}
	for _, p := range ps {
		p.waitReady(t)
	}
	st, body := api(t, ps[0].addr, "POST", "/api/v1/sessions", map[string]string{"user_id": "alice"})
	if st != 201 {
		t.Fatalf("create: %d %s", st, body)
	}
	var s struct{ Token, Handle string }
	_ = json.Unmarshal(body, &s)
	onB, onC := dial(t, ps[1].addr, s.Token), dial(t, ps[2].addr, s.Token)
	if st, body := api(t, ps[0].addr, "DELETE", "/api/v1/sessions/"+s.Handle, nil); st != 204 {
		t.Fatalf("revoke: %d %s", st, body)
	}
	for _, c := range []*websocket.Conn{onB, onC} {
		if code := closeCode(t, c); code != 4500 {
			t.Fatalf("close %d, want 4500", code)
		}
	}

	// kill -9 C: A and B list it as gone within 3 heartbeat intervals (+ slack).
	waitCluster(t, ps[0].addr, "p-c", true)
	if err := ps[2].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	waitCluster(t, ps[0].addr, "p-c", false)
	waitCluster(t, ps[1].addr, "p-c", false)
	t.Logf("p-c seen gone %s after kill -9 (interval 300ms)", time.Since(killed).Round(time.Millisecond))
	if !strings.Contains(ps[0].logs.String(), "gone") {
		t.Fatalf("no 'instance gone' log line on p-a:\n%s", ps[0].logs.String())
	}

	// SIGTERM B: it drains and exits 0.
	onB2 := dial(t, ps[1].addr, mustToken(t, ps[0].addr, "bob"))
	_ = ps[1].cmd.Process.Signal(syscall.SIGTERM)
	if code := closeCode(t, onB2); code != 1001 {
		t.Fatalf("drain close %d, want 1001", code)
	}
	select {
	case err := <-ps[1].done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, ps[1].logs.String())
		}
		ps[1].done <- nil
	case <-time.After(generous):
		t.Fatal("no exit after SIGTERM")
	}
}

func mustToken(t *testing.T, addr, user string) string {
	st, body := api(t, addr, "POST", "/api/v1/sessions", map[string]string{"user_id": user})
	if st != 201 {
		t.Fatalf("create: %d %s", st, body)
	}
	var s struct{ Token string }
	_ = json.Unmarshal(body, &s)
	return s.Token
}

func waitCluster(t *testing.T, addr, id string, alive bool) {
	t.Helper()
	deadline := time.Now().Add(generous)
	for time.Now().Before(deadline) {
		_, body := api(t, addr, "GET", "/api/v1/cluster", nil)
		var v struct {
			Instances []struct {
				ID    string `json:"id"`
				Alive bool   `json:"alive"`
			} `json:"instances"`
		}
		_ = json.Unmarshal(body, &v)
		for _, in := range v.Instances {
			if in.ID == id && in.Alive == alive {
				return
			}
		}
		if !alive {
			found := false
			for _, in := range v.Instances {
				found = found || in.ID == id
			}
			if !found {
				return // dropped from the view altogether
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("instance %s never alive=%v in %s's cluster view", id, alive, addr)
}

// The README's run command: embedded mode, no Redis, answers /healthz.
func TestEmbeddedRunAnswersHealthz(t *testing.T) {
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	env := map[string]string{"GATEWAY_ADDR": addr}
	go func() { done <- run(ctx, nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }) }()
	deadline := time.Now().Add(generous)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("embedded gateway never answered /healthz")
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("demo page: %v %v", err, resp)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run returned %v after a clean drain", err)
	}
}

// An operator's GODEBUG survives the re-execution that adds
// adaptivestackstart=0 (smallStacks): the gateway starts, and its
// environment has one GODEBUG holding both. (It used to re-execute itself
// forever whenever GODEBUG was set without adaptivestackstart.)
func TestOperatorsGODEBUGIsKept(t *testing.T) {
	p := startProc(t, map[string]string{"GATEWAY_ADDR": freeAddr(t), "GODEBUG": "gctrace=1"})
	p.waitReady(t)
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, kv := range strings.Split(string(raw), "\x00") {
		if strings.HasPrefix(kv, "GODEBUG=") {
			got = append(got, kv)
		}
	}
	if want := "GODEBUG=gctrace=1,adaptivestackstart=0"; len(got) != 1 || got[0] != want {
		t.Fatalf("GODEBUG entries %q, want [%s]", got, want)
	}
}

func TestWithGODEBUG(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		want []string
	}{
		{[]string{"A=1"}, []string{"A=1", "GODEBUG=x=0"}},
		{[]string{"GODEBUG=", "A=1"}, []string{"A=1", "GODEBUG=x=0"}},
		{[]string{"GODEBUG=gctrace=1", "A=1", "GODEBUG=other=1"}, []string{"A=1", "GODEBUG=gctrace=1,x=0"}},
	} {
		if got := withGODEBUG(tc.env, "x=0"); !slices.Equal(got, tc.want) {
			t.Errorf("withGODEBUG(%q) = %q, want %q", tc.env, got, tc.want)
		}
	}
}

// Redis unreachable at start: development falls back to memory (ERROR line,
// degraded /readyz); production exits non-zero with a clear message.
func TestRedisFallback(t *testing.T) {
	dead := freeAddr(t) // nothing listens there
	base := map[string]string{
		"USE_REDIS_SESSIONS": "true", "REDIS_URL": "redis://" + dead + "/0",
		"REDIS_CONNECT_ATTEMPTS": "2", "REDIS_BACKOFF_MIN": "10ms", "REDIS_BACKOFF_MAX": "20ms",
		"GATEWAY_INSTANCE_ID": "fallback",
	}
	t.Run("production exits", func(t *testing.T) {
		env := map[string]string{"GATEWAY_ENV": "production", "GATEWAY_ADDR": freeAddr(t),
			"SESSION_SECRET": "prod-secret-0123456789abcdef0123456789", "SESSION_ENCRYPTION_KEY": strings.Repeat("cd", 32),
			"AUTH_MODE": "webhook", "AUTH_WEBHOOK_URL": "https://127.0.0.1:1/auth"}
		for k, v := range base {
			env[k] = v
		}
		p := startProc(t, env)
		select {
		case err := <-p.done:
			p.done <- err
			if err == nil {
				t.Fatal("production gateway exited 0 with Redis unreachable")
			}
			if !strings.Contains(p.logs.String(), "redis unreachable") {
				t.Fatalf("no clear message:\n%s", p.logs.String())
			}
		case <-time.After(generous):
			t.Fatal("production gateway kept running without Redis")
		}
	})
	t.Run("development falls back", func(t *testing.T) {
		env := map[string]string{"GATEWAY_ENV": "development", "GATEWAY_ADDR": freeAddr(t)}
		for k, v := range base {
			env[k] = v
		}
		p := startProc(t, env)
		deadline := time.Now().Add(generous)
		for {
			resp, err := http.Get("http://" + p.addr + "/readyz")
			if err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 503 && strings.Contains(string(b), "memory") {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no degraded /readyz:\n%s", p.logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		found := false
		sc := bufio.NewScanner(strings.NewReader(p.logs.String()))
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"level":"error"`) && strings.Contains(sc.Text(), "FALLING BACK") {
				found = true
			}
		}
		if !found {
			t.Fatalf("no ERROR fallback line:\n%s", p.logs.String())
		}
	})
}
