// Package redistest starts a real redis-server on a free loopback port for
// tests that claim Redis behaviour, and stops it when the test ends.
//
// A missing redis-server (or redis-cli) fails the test, naming the Debian
// package to install (`make deps` installs every one). It never skips, on a
// developer's machine or in CI alike, and there is no opt-out: a test run
// that could not reach the real component must not go green.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is one redis-server process owned by a test. Its methods may be
// called from the test goroutine only.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int

	mu  sync.Mutex
	cmd *exec.Cmd
}

// Start starts redis-server on a free loopback port and registers its stop
// with t.Cleanup. Extra arguments are passed to redis-server as config lines
// (e.g. "--notify-keyspace-events", "Kgx").
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	bin := LookPath(t, "redis-server")
	s := &Server{t: t, bin: bin, dir: t.TempDir(), port: FreePort(t)}
	s.start(extra...)
	t.Cleanup(s.Stop)
	return s
}

// LookPath returns the path of a Redis program a test runs ("redis-server",
// "redis-cli") and fails the test when it is not on PATH, naming the Debian
// package that provides it. It never skips.
func LookPath(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("redistest: %s is not installed (%v): install the Debian package %s "+
			"(`make deps` installs everything the tests need); tests that need a real component fail rather than skip",
			name, err, debianPackage(name))
	}
	return p
}

// debianPackage names the Debian package that installs a Redis program.
func debianPackage(name string) string {
	switch name {
	case "redis-cli", "redis-benchmark":
		return "redis-tools"
	default:
		return "redis-server"
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Addr is "127.0.0.1:port".
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL is "redis://127.0.0.1:port/0".
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Port is the TCP port the server listens on (kept across Restart).
func (s *Server) Port() int { return s.port }

func (s *Server) start(extra ...string) {
	s.t.Helper()
	args := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", s.dir,
		"--daemonize", "no",
		"--loglevel", "warning",
	}
	args = append(args, extra...)
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("redistest: start redis-server: %v", err)
	}
	s.mu.Lock()
	s.cmd = cmd
	s.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := s.ping(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.Stop()
			s.t.Fatalf("redistest: redis-server on %s did not answer PING within 10s", s.Addr())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) ping() error {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "+PONG") {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}

// Stop kills the server and waits for it to exit. Safe to call twice.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd := s.cmd
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// Restart starts the server again on the same port after Stop. Data is not kept.
func (s *Server) Restart(extra ...string) {
	s.t.Helper()
	s.Stop()
	s.start(extra...)
}

// Do sends one inline command (e.g. "CLIENT KILL TYPE pubsub") over a fresh
// connection and returns the first reply line. It is for tests that poke the
// server behind the client's back.
func (s *Server) Do(command string) (string, error) {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(command + "\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}
