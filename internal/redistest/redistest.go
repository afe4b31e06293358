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
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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

	// sentinelConf, when set, makes this a redis-sentinel process: the
	// text is written to a config file (Sentinel rewrites it) before each
	// start.
	sentinelConf string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed once cmd has exited and been waited for
}

// startTimeout bounds how long a started redis-server may take to answer
// PING: a hang detector, far beyond what a loaded machine needs.
const startTimeout = 30 * time.Second

// startAttempts bounds the retries when redis-server exits at once, which
// happens when its port, free a moment ago, was taken meanwhile (by another
// test process, or as the local port of some outbound connection).
const startAttempts = 5

// Start starts redis-server on a free loopback port and registers its stop
// with t.Cleanup. Extra arguments are passed to redis-server as config lines
// (e.g. "--notify-keyspace-events", "Kgx").
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	bin := LookPath(t, "redis-server")
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(s.Stop)
	for attempt := 1; ; attempt++ {
		s.port = FreePort(t)
		err := s.start(extra...)
		if err == nil {
			return s
		}
		if !errors.Is(err, errExited) || attempt == startAttempts {
			t.Fatalf("redistest: %v", err)
		}
		t.Logf("redistest: %v; trying another port", err)
	}
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
	case "redis-sentinel":
		return "redis-sentinel"
	default:
		return "redis-server"
	}
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that no test on this machine was given in the last portLease.
//
// The lease matters for topologies that outlive a node: packages run their
// tests in parallel processes, and when one test kills a master, its
// sentinels (or cluster nodes) keep that address in mind as a node to
// reconfigure when it comes back. A port the kernel hands out again to
// another test's fresh master would be taken for it and turned into a
// replica of the first test's topology, its data set replaced. (Seen once
// in CI: a Sentinel test's new master held another data set.)
func FreePort(t testing.TB) int {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "sessiongate-redistest-ports")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("redistest: free port: %v", err)
	}
	for range 200 {
		port := kernelPort(t)
		if leasePort(dir, port) {
			return port
		}
	}
	t.Fatalf("redistest: free port: every port the kernel offered was leased in the last %s", portLease)
	return 0
}

// portLease is how long a port handed out by FreePort is not handed out
// again, to any test process on the machine.
const portLease = 20 * time.Minute

// leasePort takes the lease of port in dir: a file created exclusively, or
// one whose lease ran out (renewed by its mtime).
func leasePort(dir string, port int) bool {
	path := filepath.Join(dir, strconv.Itoa(port))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err == nil {
		_ = f.Close()
		return true
	}
	st, err := os.Stat(path)
	if err != nil || time.Since(st.ModTime()) < portLease {
		return false
	}
	// Two processes may renew the same expired lease at once; the
	// second start then fails on the taken port and picks another.
	now := time.Now()
	return os.Chtimes(path, now, now) == nil
}

func kernelPort(t testing.TB) int {
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

// start runs redis-server on s.port and waits until it answers PING. An
// error wrapping errExited means it exited first (e.g. the port was taken).
func (s *Server) start(extra ...string) error {
	var args []string
	if s.sentinelConf != "" {
		conf := filepath.Join(s.dir, "sentinel.conf")
		if err := os.WriteFile(conf, []byte(s.sentinelConf), 0o600); err != nil {
			return fmt.Errorf("write sentinel config: %w", err)
		}
		args = append(args, conf)
	}
	args = append(args,
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--daemonize", "no",
		"--loglevel", "warning",
	)
	if s.sentinelConf == "" {
		args = append(args, "--save", "", "--appendonly", "no")
	}
	args = append(args, extra...)
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	var out bytes.Buffer // read only after exited is closed
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", filepath.Base(s.bin), err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	deadline := time.Now().Add(startTimeout)
	for {
		if err := s.ping(); err == nil {
			return nil
		}
		select {
		case <-exited:
			s.mu.Lock()
			s.cmd = nil
			s.mu.Unlock()
			return fmt.Errorf("%w (port %d): %s", errExited, s.port, strings.TrimSpace(out.String()))
		default:
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("redis-server on %s did not answer PING within %s", s.Addr(), startTimeout)
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
	// A server with a password answers NOAUTH: it is up all the same.
	if !strings.HasPrefix(line, "+PONG") && !strings.HasPrefix(line, "-NOAUTH") {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}

// Stop kills the server and waits for it to exit. Safe to call twice.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Restart starts the server again on the same port after Stop. Data is not
// kept. Should the port have been taken meanwhile, it retries a few times.
func (s *Server) Restart(extra ...string) {
	s.t.Helper()
	s.Stop()
	for attempt := 1; ; attempt++ {
		err := s.start(extra...)
		if err == nil {
			return
		}
		if !errors.Is(err, errExited) || attempt == startAttempts {
			s.t.Fatalf("redistest: restart: %v", err)
		}
		s.t.Logf("redistest: restart: %v; trying again", err)
		time.Sleep(100 * time.Millisecond)
	}
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
