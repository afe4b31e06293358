//go:build e2e

package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/e2e/internal/cluster"
)

// generous bounds every wait for something that must happen: long enough
// that a loaded machine (stress-ng on every core) never hits it, so it only
// ever catches a hang. The tests assert order and outcome, never speed.
const generous = 30 * time.Second

// suite is what TestMain prepares once for every test.
var suite struct {
	repoRoot   string
	gatewayBin string
	workerBin  string // the example worker, cmd/worker
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
		return m.Run() // every test fails via requireSuite, naming what is missing
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
	if suite.workerBin, err = cluster.BuildWorker(ctx, suite.repoRoot, dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	return m.Run()
}

// checkPrograms reports the first program the suite needs that is missing,
// naming what installs it.
func checkPrograms() error {
	if err := cluster.Need("redis-server", "haproxy", "nginx"); err != nil {
		return err
	}
	if _, err := exec.LookPath(chromiumPath()); err != nil {
		return fmt.Errorf("%s not found (install the Debian package chromium: `make deps`, or set CHROMIUM): %w", chromiumPath(), err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("node not found (install Node.js 20 or later): %w", err)
	}
	pw := filepath.Join(suite.repoRoot, "client-js", "node_modules", "playwright-core", "index.mjs")
	if _, err := os.Stat(pw); err != nil {
		return fmt.Errorf("playwright-core not installed (`make js-deps`): %w", err)
	}
	return nil
}

func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// requireSuite fails the test when a program the suite needs is missing.
// It never skips, in CI or not: an e2e run that could not start the real
// processes must not pass.
func requireSuite(t *testing.T) {
	t.Helper()
	if suite.missing != nil {
		t.Fatalf("e2e: %v", suite.missing)
	}
}

// missingChildEnv marks a re-run of this binary with PATH emptied.
const missingChildEnv = "SG_E2E_MISSING_CHILD"

// A missing program fails the suite, never skips it, whatever CI says: the
// test binary re-runs itself with PATH emptied (node is then missing) and
// must exit non-zero with a FAIL that names what to install, and no SKIP.
func TestMissingProgramFailsNotSkips(t *testing.T) {
	if os.Getenv(missingChildEnv) == "1" {
		requireSuite(t)
		t.Fatal("requireSuite let the test run with PATH empty")
	}
	for _, ci := range []string{"", "false", "true"} {
		t.Run("CI="+ci, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMissingProgramFailsNotSkips$", "-test.v", "-test.count=1")
			cmd.Env = []string{"PATH=", "CI=" + ci, missingChildEnv + "=1"}
			for _, kv := range os.Environ() {
				if k, _, _ := strings.Cut(kv, "="); k != "PATH" && k != "CI" && k != missingChildEnv {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("child with PATH empty did not fail (err %v):\n%s", err, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestMissingProgramFailsNotSkips") || !strings.Contains(string(out), "node not found") {
				t.Errorf("child output lacks a FAIL naming node:\n%s", out)
			}
			if strings.Contains(string(out), "--- SKIP") {
				t.Errorf("child skipped:\n%s", out)
			}
		})
	}
}
