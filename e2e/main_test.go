//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/e2e/internal/cluster"
)

// suite is what TestMain prepares once for every test.
var suite struct {
	repoRoot   string
	gatewayBin string
	// missing says why the suite cannot run (a program is not installed).
	missing error
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	_, file, _, _ := runtime.Caller(0)
	suite.repoRoot = filepath.Dir(filepath.Dir(file))
	suite.missing = checkPrograms()
	if suite.missing != nil {
		return m.Run() // every test skips (or fails under CI) via requireSuite
	}
	dir, err := os.MkdirTemp("", "sg-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin, err := cluster.Build(ctx, suite.repoRoot, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	suite.gatewayBin = bin
	return m.Run()
}

func checkPrograms() error {
	if err := cluster.Need("redis-server", "haproxy"); err != nil {
		return err
	}
	for _, p := range []string{chromiumPath(), "node"} {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("%s not found: %w", p, err)
		}
	}
	pw := filepath.Join(suite.repoRoot, "client-js", "node_modules", "playwright-core", "index.mjs")
	if _, err := os.Stat(pw); err != nil {
		return fmt.Errorf("playwright-core not installed (make js-deps): %w", err)
	}
	return nil
}

func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// requireSuite skips the test when a program is missing, or fails it under CI.
func requireSuite(t *testing.T) {
	t.Helper()
	if suite.missing == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("e2e: %v (CI=true, so this is a failure)", suite.missing)
	}
	t.Skipf("e2e: %v", suite.missing)
}
