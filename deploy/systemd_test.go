package deploy

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
)

// unitBinary is the ExecStart path the unit names.
const unitBinary = "/usr/local/bin/sessiongate-gateway"

// systemdAnalyze finds systemd-analyze. A missing program fails the test
// with the Debian package that installs it: it never skips.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze not found (install the Debian package systemd: `make deps`): %v", err)
	}
	return p
}

// verifyUnit runs `systemd-analyze verify` on unit, written to dir, and
// returns what it printed. systemd-analyze exits 0 after many problems
// (an unknown key, an unparsable value: "ignoring"), so a clean unit is
// one with exit 0 AND no output.
func verifyUnit(t *testing.T, bin, dir string, unit []byte) (string, error) {
	t.Helper()
	path := filepath.Join(dir, "sessiongate.service")
	if err := os.WriteFile(path, unit, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "verify", "--man=no", path)
	// SYSTEMD_LOG_COLOR: plain text in the failure messages.
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_COLOR=0")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// The unit in deploy/systemd passes `systemd-analyze verify` without a
// single warning, run against a real gateway binary at its ExecStart.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze := systemdAnalyze(t)
	unit := SystemdUnit()
	if n := bytes.Count(unit, []byte("\nExecStart="+unitBinary+"\n")); n != 1 {
		t.Fatalf("unit has %d lines ExecStart=%s, want 1", n, unitBinary)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "sessiongate-gateway")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/gateway")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/gateway: %v\n%s", err, out)
	}
	unit = bytes.Replace(unit, []byte("ExecStart="+unitBinary), []byte("ExecStart="+bin), 1)
	out, err := verifyUnit(t, analyze, dir, unit)
	if err != nil || out != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}

	// The check can fail: a misspelt signal is only a warning, exit 0,
	// and must still be caught.
	broken := bytes.Replace(unit, []byte("KillSignal=SIGTERM"), []byte("KillSignal=SIGTREM"), 1)
	if out, _ := verifyUnit(t, analyze, t.TempDir(), broken); !strings.Contains(out, "SIGTREM") {
		t.Fatalf("verify of a unit with KillSignal=SIGTREM printed %q, want a warning naming it", out)
	}
}

// unitSettings reads the [Service] section: key -> values in order.
func unitSettings(t *testing.T, unit []byte) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(bytes.NewReader(unit))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = line
		case section == "[Service]":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("unit line %q is not key=value", line)
			}
			out[k] = append(out[k], v)
		}
	}
	return out
}

// The unit keeps the hardening and limits docs/DEPLOY.md promises, and
// systemd waits for the gateway's whole drain before it kills it.
func TestSystemdUnitHardeningAndLimits(t *testing.T) {
	s := unitSettings(t, SystemdUnit())
	want := map[string]string{
		"DynamicUser":             "yes",
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"CapabilityBoundingSet":   "",
		"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"SystemCallFilter":        "@system-service",
		"Restart":                 "on-failure",
		"KillSignal":              "SIGTERM",
		"EnvironmentFile":         "/etc/sessiongate/gateway.env",
	}
	for k, v := range want {
		got, ok := s[k]
		if !ok || got[0] != v {
			t.Errorf("[Service] %s = %q, want %q", k, got, v)
		}
	}
	nofile, err := strconv.Atoi(first(s["LimitNOFILE"]))
	if err != nil || nofile < 200000 {
		t.Errorf("LimitNOFILE = %q, want at least 200000 (100k connections and their headroom)", s["LimitNOFILE"])
	}
	cfg, err := config.Load(nil, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	stop, err := time.ParseDuration(first(s["TimeoutStopSec"]))
	if err != nil {
		t.Fatalf("TimeoutStopSec = %q: %v", s["TimeoutStopSec"], err)
	}
	if floor := cfg.DrainWindow + cfg.ShutdownTimeout; stop <= floor {
		t.Errorf("TimeoutStopSec = %s, want above DRAIN_WINDOW + SHUTDOWN_TIMEOUT = %s: systemd would SIGKILL a draining gateway", stop, floor)
	}
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}
