package cluster

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Redis is one redis-server process. It persists with an append-only file
// fsynced on every write, so a restart (even after SIGKILL) keeps the
// sessions, as a production Redis would.
type Redis struct {
	*Process
	Port int
}

func startRedis(ctx context.Context, dir string, port int) (*Redis, error) {
	bin, err := lookPath("redis-server")
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "redis-data")
	if err := mkdir(data); err != nil {
		return nil, err
	}
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "yes",
		"--appendfsync", "always",
		"--dir", data,
		"--daemonize", "no",
		"--loglevel", "notice",
	}
	r := &Redis{Process: newProcess("redis", filepath.Join(dir, "redis.log"), bin, args, minimalEnv(), data), Port: port}
	if err := r.Restart(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// Addr is "127.0.0.1:port".
func (r *Redis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

// URL is "redis://127.0.0.1:port/0".
func (r *Redis) URL() string { return "redis://" + r.Addr() + "/0" }

// Restart starts redis-server (again) on the same port, once it is stopped,
// and waits until it answers PING.
func (r *Redis) Restart(ctx context.Context) error {
	if r.Running() {
		return fmt.Errorf("cluster: redis is running; stop or kill it first")
	}
	if err := r.Start(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return poll(ctx, 20*time.Millisecond, "redis PING", func() error {
		if !r.Running() {
			return fmt.Errorf("%w: redis-server (see %s)", ErrExited, r.LogPath)
		}
		reply, err := r.Do("PING")
		if err != nil {
			return err
		}
		if reply != "+PONG" {
			return fmt.Errorf("PING answered %q", reply)
		}
		return nil
	})
}

// Do sends one inline command over a fresh connection and returns the first
// line of the reply (e.g. "+PONG").
func (r *Redis) Do(command string) (string, error) {
	c, err := net.DialTimeout("tcp", r.Addr(), time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte(command + "\r\n")); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// lookPath finds a program on PATH or in /usr/sbin (Debian's haproxy).
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/usr/bin"} {
		p := filepath.Join(dir, name)
		if _, err := exec.LookPath(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: %s (install the Debian package %s: `make deps`)", ErrNotFound, name, debianPackage(name))
}

// debianPackage names the Debian package that installs a program.
func debianPackage(name string) string {
	switch name {
	case "redis-cli":
		return "redis-tools"
	default: // redis-server, redis-sentinel, haproxy, nginx, chromium
		return name
	}
}

// Need reports whether every named program is installed: nil, or an error
// wrapping ErrNotFound.
func Need(names ...string) error {
	for _, n := range names {
		if _, err := lookPath(n); err != nil {
			return err
		}
	}
	return nil
}
