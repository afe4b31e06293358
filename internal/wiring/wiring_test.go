package wiring

import (
	"context"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/history"
	"github.com/sessiongate/sessiongate/pubsub"
	"github.com/sessiongate/sessiongate/session"
)

func testConfig(t *testing.T) config.Config {
	t.Helper()
	env := map[string]string{
		"SESSION_SECRET":         "wiring-secret-0123456789abcdef0123456789ab",
		"SESSION_ENCRYPTION_KEY": "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
		"REDIS_KEY_PREFIX":       "wt:",
	}
	cfg, err := config.Load(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestBuildEmbedded(t *testing.T) {
	p, err := Build(testConfig(t), nil, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Store.(*session.MemoryStore); !ok {
		t.Fatalf("store %T, want the memory store", p.Store)
	}
	if _, ok := p.Bus.(*pubsub.LocalBus); !ok {
		t.Fatalf("bus %T, want the in-process bus", p.Bus)
	}
	if _, ok := p.History.(*history.Memory); !ok {
		t.Fatalf("history %T, want the memory history", p.History)
	}
}

// The memory history hands what it appends to the in-process bus, in
// order, with its position.
func TestBuildEmbeddedHistoryPublishesOnTheBus(t *testing.T) {
	p, err := Build(testConfig(t), nil, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	bus := p.Bus.(*pubsub.LocalBus)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan pubsub.Event, 1)
	ready := make(chan struct{})
	bus.OnSubscribed(func() { close(ready) })
	done := make(chan struct{})
	go func() { defer close(done); _ = bus.Run(ctx, func(_ context.Context, e pubsub.Event) { got <- e }) }()
	t.Cleanup(func() { cancel(); <-done })
	<-ready
	msg, err := pubsub.Event{Kind: pubsub.KindMessage, ID: "e1", Origin: "a", Name: "n", Target: &pubsub.Target{All: true}}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	pos, err := p.History.Append(ctx, history.Broadcast, msg, "ignored")
	if err != nil {
		t.Fatal(err)
	}
	if e := <-got; e.ID != "e1" || e.Stream != history.Broadcast || e.Epoch != pos.Epoch || e.Offset != 1 {
		t.Fatalf("bus got %+v for position %+v", e, pos)
	}
}

func TestHistoryConfig(t *testing.T) {
	cfg := testConfig(t)
	if hc := HistoryConfig(cfg); hc.Off() || hc.Size != 100 || hc.Prefix != "wt:" {
		t.Fatalf("default history config %+v", hc)
	}
	cfg.HistoryTTL = 0
	if hc := HistoryConfig(cfg); !hc.Off() {
		t.Fatalf("HISTORY_TTL=0 gives %+v, want history off", hc)
	}
}

// TestBuildRedis: the Redis parts use the configured prefix for keys, and
// the codec they share parses the tokens the store issues.
func TestBuildRedis(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	cfg := testConfig(t)
	p, err := Build(cfg, rdb, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Bus.(*pubsub.RedisBus); !ok {
		t.Fatalf("bus %T, want the Redis bus", p.Bus)
	}
	if _, ok := p.History.(*history.Redis); !ok {
		t.Fatalf("history %T, want the Redis history", p.History)
	}
	tok, sess, err := p.Store.Create(context.Background(), "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := p.Codec.Parse(tok)
	if err != nil || h != sess.Handle {
		t.Fatalf("codec parses the store's token to %q, %v; want %q", h, err, sess.Handle)
	}
	if !mr.Exists(cfg.KeyPrefix + "s:" + sess.Handle) {
		t.Fatalf("session key not under the configured prefix %q: keys %v", cfg.KeyPrefix, mr.Keys())
	}
}

func TestBuildRefusesBadSecret(t *testing.T) {
	cfg := testConfig(t)
	cfg.SessionSecret = nil
	if _, err := Build(cfg, nil, zaptest.NewLogger(t), nil); err == nil {
		t.Fatal("Build accepted an empty session secret")
	}
}
