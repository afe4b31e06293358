package cluster

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"
)

// Build compiles ./cmd/gateway of the module at repoRoot into outDir and
// returns the binary's path.
func Build(ctx context.Context, repoRoot, outDir string) (string, error) {
	return build(ctx, repoRoot, outDir, "gateway")
}

// build compiles ./cmd/<name> into outDir/<name>.
func build(ctx context.Context, repoRoot, outDir, name string) (string, error) {
	out := filepath.Join(outDir, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd/"+name)
	cmd.Dir = repoRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("cluster: go build ./cmd/%s: %w\n%s", name, err, b)
	}
	return out, nil
}

// Gateway is one gateway instance process listening on 127.0.0.1:Port.
type Gateway struct {
	*Process
	ID   string
	Port int

	client *http.Client
	scheme string
}

func newGateway(bin, dir, id string, port int, env map[string]string) *Gateway {
	env["GATEWAY_INSTANCE_ID"] = id
	env["GATEWAY_ADDR"] = "127.0.0.1:" + strconv.Itoa(port)
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	list := minimalEnv()
	for _, k := range keys {
		list = append(list, k+"="+env[k])
	}
	return &Gateway{
		Process: newProcess(id, filepath.Join(dir, id+".log"), bin, nil, list, dir),
		ID:      id,
		Port:    port,
		client:  newHTTPClient(),
		scheme:  "http",
	}
}

// URL is the instance's own base URL, e.g. "http://127.0.0.1:41234"
// (bypassing the load balancer).
func (g *Gateway) URL() string { return g.scheme + "://127.0.0.1:" + strconv.Itoa(g.Port) }

// Restart starts the instance (again) on the same port once it has stopped,
// and waits until its /readyz answers 200.
func (g *Gateway) Restart(ctx context.Context) error {
	if g.Running() {
		return fmt.Errorf("cluster: %s is running; stop or kill it first", g.ID)
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	// After a SIGKILL the port may linger briefly in the kernel.
	if err := poll(ctx, 20*time.Millisecond, g.ID+" port free", func() error {
		if !portFree(g.Port) {
			return fmt.Errorf("port %d busy", g.Port)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := g.Start(); err != nil {
		return err
	}
	return g.WaitReady(ctx)
}

// WaitReady waits until /readyz answers 200 (or the process exits, or ctx ends).
func (g *Gateway) WaitReady(ctx context.Context) error {
	return poll(ctx, 25*time.Millisecond, g.ID+" /readyz", func() error {
		if !g.Running() {
			return fmt.Errorf("%w: %s: %v (see %s)", ErrExited, g.ID, g.ExitErr(), g.LogPath)
		}
		code, err := getStatus(ctx, g.client, g.URL()+"/readyz")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("/readyz answered %d", code)
		}
		return nil
	})
}

// Terminate sends SIGTERM (a graceful drain) without waiting.
func (g *Gateway) Terminate() error { return g.Signal(syscall.SIGTERM) }

// minimalEnv is the environment every child starts from: no inherited
// configuration (a REDIS_URL in the caller's shell must not leak in).
func minimalEnv() []string {
	env := []string{"PATH=" + os.Getenv("PATH")}
	for _, k := range []string{"HOME", "TMPDIR", "GOCOVERDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func mkdir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	return nil
}
