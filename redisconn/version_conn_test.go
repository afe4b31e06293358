package redisconn_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sessiongate/sessiongate/internal/redistest"
	"github.com/sessiongate/sessiongate/redisconn"
)

// The real redis-server of this machine is recent enough: Connect reads its
// version and says which it is.
func TestConnectReadsServerVersion(t *testing.T) {
	srv := redistest.Start(t)
	log, logs := observedLogger(t)
	m := newManager(t, fastConfig(srv.URL()), log)
	if err := m.Connect(t.Context()); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	lines := logs.FilterMessage("redis connected").All()
	if len(lines) != 1 {
		t.Fatalf("want one 'redis connected' line, got %v", logs.All())
	}
	v, _ := lines[0].ContextMap()["redis_version"].(string)
	if !strings.Contains(v, ".") {
		t.Fatalf("'redis connected' has redis_version %q, want the server's version", v)
	}
}

// fakeRedis speaks just enough RESP to pass for an old Redis: it answers
// PING, answers INFO with info (or refuses it when info is ""), and refuses
// everything else as an unknown command (HELLO included, as Redis 5 does).
func fakeRedis(t *testing.T, info string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				serveFakeRedis(c, info)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return "redis://" + l.Addr().String() + "/0"
}

func serveFakeRedis(c net.Conn, info string) {
	r := bufio.NewReader(c)
	for {
		args, err := readRESP(r)
		if err != nil {
			return
		}
		var reply string
		switch strings.ToUpper(args[0]) {
		case "PING":
			reply = "+PONG\r\n"
		case "INFO":
			if info == "" {
				reply = "-NOPERM this user has no permissions to run the 'info' command\r\n"
			} else {
				reply = fmt.Sprintf("$%d\r\n%s\r\n", len(info), info)
			}
		default:
			reply = fmt.Sprintf("-ERR unknown command '%s'\r\n", args[0])
		}
		if _, err := io.WriteString(c, reply); err != nil {
			return
		}
	}
}

// readRESP reads one command: an array of bulk strings.
func readRESP(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, "*") {
		return nil, errors.New("not an array")
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil || n < 1 {
		return nil, errors.New("bad array length")
	}
	args := make([]string, n)
	for i := range args {
		hdr, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(hdr, "$")))
		if err != nil || size < 0 {
			return nil, errors.New("bad bulk length")
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		args[i] = string(buf[:size])
	}
	return args, nil
}

// An old server is refused at once, with an error naming its version and
// the minimum; retrying cannot help, so the connect budget is not spent.
func TestConnectRefusesOldRedis(t *testing.T) {
	url := fakeRedis(t, "# Server\r\nredis_version:6.0.16\r\nredis_mode:standalone\r\n")
	log, logs := observedLogger(t)
	cfg := fastConfig(url)
	cfg.ConnectAttempts = 5
	m := newManager(t, cfg, log)
	err := m.Connect(t.Context())
	if !errors.Is(err, redisconn.ErrUnsupportedVersion) || errors.Is(err, redisconn.ErrUnavailable) {
		t.Fatalf("Connect = %v, want ErrUnsupportedVersion", err)
	}
	for _, want := range []string{"6.0.16", ">= " + redisconn.MinVersion} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not name %q", err, want)
		}
	}
	if n := logs.FilterMessage("redis connect attempt failed").Len(); n != 0 {
		t.Fatalf("an old server was retried %d times", n)
	}
	if n := logs.FilterMessage("redis unsupported").Len(); n != 1 {
		t.Fatalf("want one 'redis unsupported' line, got %v", logs.All())
	}
	if m.State() != redisconn.StateDown {
		t.Fatalf("state = %s, want down", m.State())
	}
}

// A server that will not say (INFO refused by an ACL, or renamed) is
// accepted with a warning rather than refused.
func TestConnectUnknownVersionWarns(t *testing.T) {
	url := fakeRedis(t, "")
	log, logs := observedLogger(t)
	m := newManager(t, fastConfig(url), log)
	if err := m.Connect(t.Context()); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if logs.FilterMessage("redis version unknown").Len() != 1 {
		t.Fatalf("want one 'redis version unknown' warning, got %v", logs.All())
	}
}
