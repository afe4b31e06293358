package redisconn_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/internal/redistest"
	"github.com/sessiongate/sessiongate/redisconn"
)

// fastConfig is a Config with tiny backoffs so budgets are spent quickly.
// The dial timeout is generous instead: a refused connection fails at once
// anyway, and a PING to a live server must not fail because the machine is
// loaded (a spurious failed check would add a transition).
func fastConfig(url string) redisconn.Config {
	return redisconn.Config{
		URL:             url,
		ConnectAttempts: 3,
		BackoffMin:      10 * time.Millisecond,
		BackoffMax:      40 * time.Millisecond,
		CheckInterval:   20 * time.Millisecond,
		DialTimeout:     10 * time.Second,
	}
}

// observedLogger logs to the test output and records entries for assertions.
func observedLogger(t *testing.T) (*zap.Logger, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	return zap.New(zapcore.NewTee(core, zaptest.NewLogger(t).Core())), logs
}

func newManager(t *testing.T, cfg redisconn.Config, log *zap.Logger) *redisconn.Manager {
	t.Helper()
	m, err := redisconn.New(cfg, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m
}

// eventually polls cond until it holds or a generous timeout passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConnectSucceeds(t *testing.T) {
	srv := redistest.Start(t)
	log, logs := observedLogger(t)
	m := newManager(t, fastConfig(srv.URL()), log)
	if got := m.State(); got != redisconn.StateConnecting {
		t.Fatalf("state before Connect = %s, want connecting", got)
	}
	if m.Latency() != 0 {
		t.Fatalf("Latency before any PING = %s, want 0", m.Latency())
	}
	if err := m.Connect(t.Context()); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if m.Latency() <= 0 {
		t.Fatal("Latency after Connect is not the PING's round trip")
	}
	if got := m.State(); got != redisconn.StateConnected {
		t.Fatalf("state = %s, want connected", got)
	}
	if logs.FilterMessage("redis connected").Len() != 1 {
		t.Fatalf("want one 'redis connected' line, got %v", logs.All())
	}
	if err := m.Client().Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET through Client: %v", err)
	}
	h := m.Health(t.Context())
	if !h.OK() || h.State != redisconn.StateConnected || h.LastError != "" || h.Latency <= 0 {
		t.Fatalf("Health = %+v, want ok and connected with a latency", h)
	}
}

func TestConnectExhaustsBudget(t *testing.T) {
	port := redistest.FreePort(t) // nothing listens there
	log, logs := observedLogger(t)
	cfg := fastConfig(fmt.Sprintf("redis://127.0.0.1:%d/0", port))
	var transitions []string
	m := newManager(t, cfg, log)
	m.OnStateChange(func(from, to redisconn.State) { transitions = append(transitions, from.String()+"->"+to.String()) })

	err := m.Connect(t.Context())
	if !errors.Is(err, redisconn.ErrUnavailable) {
		t.Fatalf("Connect error = %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "3 attempts") {
		t.Fatalf("error %q does not say how many attempts were made", err)
	}
	failed := logs.FilterMessage("redis connect attempt failed").All()
	if len(failed) != 2 {
		t.Fatalf("want 2 'attempt failed' lines before the final one, got %d: %v", len(failed), logs.All())
	}
	for i, e := range failed {
		f := e.ContextMap()
		if f["attempt"] != fmt.Sprintf("%d/3", i+1) {
			t.Errorf("line %d: attempt = %v, want %d/3", i, f["attempt"], i+1)
		}
		if _, ok := f["next_delay"]; !ok {
			t.Errorf("line %d has no next_delay: %v", i, f)
		}
		if f["error"] == "" {
			t.Errorf("line %d has no error: %v", i, f)
		}
	}
	final := logs.FilterMessage("redis unavailable").All()
	if len(final) != 1 || final[0].Level != zapcore.ErrorLevel || final[0].ContextMap()["attempt"] != "3/3" {
		t.Fatalf("want one ERROR line with attempt 3/3, got %v", final)
	}
	if got := m.State(); got != redisconn.StateDown {
		t.Fatalf("state = %s, want down", got)
	}
	if strings.Join(transitions, ",") != "connecting->down" {
		t.Fatalf("transitions = %v, want [connecting->down]", transitions)
	}
	if h := m.Health(t.Context()); h.OK() || h.Status != "down" || h.LastError == "" {
		t.Fatalf("Health = %+v, want status down with an error", h)
	}
}

func TestConnectStopsWithContext(t *testing.T) {
	port := redistest.FreePort(t)
	cfg := fastConfig(fmt.Sprintf("redis://127.0.0.1:%d/0", port))
	cfg.ConnectAttempts, cfg.BackoffMin, cfg.BackoffMax = 100, time.Hour, time.Hour
	ctx, cancel := context.WithCancel(t.Context())
	// Cancel once the first attempt has failed: Connect is then in its
	// hour-long backoff, which only the context can end.
	log := zaptest.NewLogger(t).WithOptions(zap.Hooks(func(e zapcore.Entry) error {
		if e.Message == "redis connect attempt failed" {
			cancel()
		}
		return nil
	}))
	m := newManager(t, cfg, log)
	if err := m.Connect(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Connect error = %v, want context.Canceled", err)
	}
}

func TestReconnect(t *testing.T) {
	srv := redistest.Start(t)
	log, logs := observedLogger(t)
	m := newManager(t, fastConfig(srv.URL()), log)
	var mu sync.Mutex
	var transitions []string
	m.OnStateChange(func(from, to redisconn.State) {
		mu.Lock()
		transitions = append(transitions, from.String()+"->"+to.String())
		mu.Unlock()
	})
	if err := m.Connect(t.Context()); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	client := m.Client()

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	srv.Stop()
	eventually(t, "state down", func() bool { return m.State() == redisconn.StateDown })
	recon := logs.FilterMessage("redis reconnecting").All()
	if len(recon) != 2 {
		t.Fatalf("want 2 'redis reconnecting' lines (budget 3), got %d: %v", len(recon), logs.All())
	}
	for i, e := range recon {
		f := e.ContextMap()
		if f["attempt"] != fmt.Sprintf("%d/3", i+1) || f["backoff"] == nil || f["error"] == "" {
			t.Errorf("reconnecting line %d lacks attempt/backoff/error: %v", i, f)
		}
	}
	if n := logs.FilterMessage("redis down").Len(); n != 1 {
		t.Fatalf("want one 'redis down' line, got %d", n)
	}
	h := m.Health(t.Context())
	if h.OK() || h.Status != "down" || h.LastError == "" {
		t.Fatalf("Health during outage = %+v, want down with last error", h)
	}

	srv.Restart()
	eventually(t, "state connected again", func() bool { return m.State() == redisconn.StateConnected })
	rec := logs.FilterMessage("redis recovered").All()
	if len(rec) != 1 || rec[0].ContextMap()["outage"] == nil {
		t.Fatalf("want one 'redis recovered' line with the outage, got %v", rec)
	}
	if n := logs.FilterMessage("redis down").Len(); n != 1 {
		t.Fatalf("state down logged %d times, want once", n)
	}
	if h := m.Health(t.Context()); !h.OK() || h.LastError != "" {
		t.Fatalf("Health after recovery = %+v, want ok", h)
	}
	if m.Client() != client {
		t.Fatal("client was replaced; it must be the same one")
	}
	if err := client.Set(t.Context(), "after", "restart", 0).Err(); err != nil {
		t.Fatalf("SET after recovery: %v", err)
	}
	mu.Lock()
	got := strings.Join(transitions, ",")
	mu.Unlock()
	want := "connecting->connected,connected->reconnecting,reconnecting->down,down->connected"
	if got != want {
		t.Fatalf("transitions = %s, want %s", got, want)
	}
}

func TestRunReportsFirstConnect(t *testing.T) {
	srv := redistest.Start(t)
	log, logs := observedLogger(t)
	m := newManager(t, fastConfig(srv.URL()), log)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	eventually(t, "connected", func() bool { return m.State() == redisconn.StateConnected })
	cancel()
	<-done
	if logs.FilterMessage("redis connected").Len() != 1 {
		t.Fatalf("want one 'redis connected' line, got %v", logs.All())
	}
}

func TestCloseStopsRun(t *testing.T) {
	srv := redistest.Start(t)
	m, err := redisconn.New(fastConfig(srv.URL()), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); m.Run(context.Background()) }()
	eventually(t, "connected", func() bool { return m.State() == redisconn.StateConnected })
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := m.Connect(t.Context()); !errors.Is(err, redisconn.ErrClosed) {
		t.Fatalf("Connect after Close = %v, want ErrClosed", err)
	}
}

func TestPasswordNeverLeaks(t *testing.T) {
	const pw = "correct-horse-battery-staple"
	srv := redistest.Start(t)
	if _, err := srv.Do("CONFIG SET requirepass " + pw); err != nil {
		t.Fatalf("set requirepass: %v", err)
	}
	tests := []struct {
		name    string
		cfg     redisconn.Config
		wantErr bool
	}{
		{name: "wrong password in URL", cfg: fastConfig("redis://:" + "wrong-" + pw + "@" + srv.Addr() + "/0"), wantErr: true},
		{name: "right password override", cfg: func() redisconn.Config {
			c := fastConfig(srv.URL())
			c.Password = pw
			return c
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log, logs := observedLogger(t)
			m := newManager(t, tt.cfg, log)
			err := m.Connect(t.Context())
			if (err != nil) != tt.wantErr {
				t.Fatalf("Connect error = %v, wantErr %v", err, tt.wantErr)
			}
			h := m.Health(t.Context())
			texts := []string{tt.cfg.Redacted(), h.LastError, fmt.Sprint(err)}
			for _, e := range logs.All() {
				texts = append(texts, e.Message)
				for k, v := range e.ContextMap() {
					texts = append(texts, k+"="+fmt.Sprint(v))
				}
			}
			if tt.wantErr && h.LastError == "" {
				t.Fatal("Health has no last error for a refused password")
			}
			for _, s := range texts {
				if strings.Contains(s, pw) {
					t.Fatalf("password leaked in %q", s)
				}
			}
		})
	}
}

func TestObserveCommands(t *testing.T) {
	srv := redistest.Start(t)
	m := newManager(t, fastConfig(srv.URL()), zaptest.NewLogger(t))
	// Warm the pool first so connection set-up commands are not observed.
	if err := m.Connect(t.Context()); err != nil {
		t.Fatal(err)
	}
	type obs struct {
		cmd string
		err error
	}
	var mu sync.Mutex
	var seen []obs
	m.ObserveCommands(func(cmd string, d time.Duration, err error) {
		mu.Lock()
		seen = append(seen, obs{cmd, err})
		mu.Unlock()
	})
	ctx := t.Context()
	c := m.Client()
	_ = c.Set(ctx, "a", "1", 0).Err()
	_ = c.Get(ctx, "missing").Err() // redis.Nil: not an error for metrics
	_ = c.Incr(ctx, "a").Err()
	_ = c.HGet(ctx, "a", "f").Err() // WRONGTYPE
	_, _ = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Get(ctx, "a")
		p.Get(ctx, "b")
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	var got []string
	for _, o := range seen {
		if o.cmd == "hello" { // pipelines use their own pool: a new connection says HELLO
			continue
		}
		got = append(got, fmt.Sprintf("%s:%v", o.cmd, o.err != nil))
	}
	want := "set:false,get:false,incr:false,hget:true,pipeline:false"
	if strings.Join(got, ",") != want {
		t.Fatalf("observed %v, want %s", got, want)
	}
}
