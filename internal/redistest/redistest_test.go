package redistest

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// childEnv tells a re-run of this test binary which lookup to try with an
// empty PATH.
const childEnv = "REDISTEST_MISSING_CHILD"

// A missing program must fail the test, never skip it, whatever CI says:
// the same test binary is re-run with PATH emptied and must exit non-zero
// with a FAIL naming the Debian package, and no SKIP.
func TestMissingProgramFailsNotSkips(t *testing.T) {
	switch os.Getenv(childEnv) {
	case "":
	case "start":
		Start(t)
		return
	case "redis-cli":
		LookPath(t, "redis-cli")
		return
	case "sentinel":
		StartSentinel(t, SentinelOptions{})
		return
	default:
		t.Fatalf("unknown %s=%q", childEnv, os.Getenv(childEnv))
	}
	tests := []struct {
		name, child, pkg string
		ci               string
	}{
		{name: "redis-server, CI unset", child: "start", pkg: "redis-server"},
		{name: "redis-server, CI=false", child: "start", pkg: "redis-server", ci: "false"},
		{name: "redis-server, CI=true", child: "start", pkg: "redis-server", ci: "true"},
		{name: "redis-cli, CI unset", child: "redis-cli", pkg: "redis-tools"},
		{name: "redis-sentinel, CI=true", child: "sentinel", pkg: "redis-sentinel", ci: "true"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestMissingProgramFailsNotSkips$", "-test.v", "-test.count=1")
			env := []string{"PATH=", childEnv + "=" + tc.child}
			if tc.ci != "" {
				env = append(env, "CI="+tc.ci)
			}
			for _, kv := range os.Environ() {
				k, _, _ := strings.Cut(kv, "=")
				if k != "PATH" && k != "CI" && k != childEnv {
					env = append(env, kv)
				}
			}
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("child with PATH empty did not fail (err %v):\n%s", err, out)
			}
			for _, want := range []string{"--- FAIL: TestMissingProgramFailsNotSkips", "Debian package " + tc.pkg, "make deps"} {
				if !strings.Contains(string(out), want) {
					t.Errorf("child output lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(string(out), "--- SKIP") {
				t.Errorf("child skipped:\n%s", out)
			}
		})
	}
}

// The helper itself works where redis-server is installed.
func TestStartAnswersPing(t *testing.T) {
	s := Start(t)
	if got, err := s.Do("PING"); err != nil || got != "+PONG" {
		t.Fatalf("PING = %q, %v", got, err)
	}
	s.Restart()
	if got, err := s.Do("PING"); err != nil || got != "+PONG" {
		t.Fatalf("PING after Restart = %q, %v", got, err)
	}
}

// A port taken between FreePort and the bind makes redis-server exit at
// once: start says so (errExited, with redis-server's own words) instead of
// waiting out its PING deadline, and Start then tries another port.
func TestStartReportsTakenPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := &Server{t: t, bin: LookPath(t, "redis-server"), dir: t.TempDir(), port: l.Addr().(*net.TCPAddr).Port}
	t.Cleanup(s.Stop)
	err = s.start()
	if !errors.Is(err, errExited) {
		t.Fatalf("start on a taken port = %v, want errExited", err)
	}
	if !strings.Contains(err.Error(), "in use") {
		t.Errorf("error %q does not carry redis-server's reason", err)
	}
}
