package revocation

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/sessiongate/sessiongate/connmgr"
	"github.com/sessiongate/sessiongate/internal/redistest"
	"github.com/sessiongate/sessiongate/pubsub"
)

// recordingBus passes events to a real bus and records those it accepted.
type recordingBus struct {
	Publisher
	mu  sync.Mutex
	ok  []pubsub.Event
	err int
}

func (b *recordingBus) Publish(ctx context.Context, e pubsub.Event) error {
	err := b.Publisher.Publish(ctx, e)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		b.err++
	} else {
		b.ok = append(b.ok, e)
	}
	return err
}

func (b *recordingBus) accepted() []pubsub.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]pubsub.Event(nil), b.ok...)
}

// Issue 9 item 3 against a real redis-server: revocations made while it is
// down are queued, and once it is back (same port, data kept) the session
// and the user's sessions are deleted and announced.
func TestQueuedRevocationsRealRedis(t *testing.T) {
	persistent := []string{"--appendonly", "yes", "--appendfsync", "always"}
	srv := redistest.Start(t, persistent...)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: 1,
		MinRetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	store := newRedisStore(t, rdb)
	bus := &recordingBus{Publisher: pubsub.NewRedisBus(rdb, pubsub.RedisConfig{Channel: "rv:events"}, zaptest.NewLogger(t))}
	rg := newRig(t, rigOptions{store: store, bus: bus})
	ctx := context.Background()
	var handles []string
	for _, u := range []string{"quin", "rue", "rue"} {
		_, s, err := store.Create(ctx, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		rg.conns.open(u, s.Handle, 1, s.ExpiresAt)
		handles = append(handles, s.Handle)
	}
	rg.run(t)

	srv.Stop()
	if res := rg.r.RevokeSession(ctx, handles[0], "api"); !res.Pending || res.ClosedLocal != 1 {
		t.Fatalf("session revocation during the outage: %+v", res)
	}
	if res, err := rg.r.RevokeUser(ctx, "rue", "api"); err != nil || !res.Pending || res.ClosedLocal != 2 {
		t.Fatalf("user revocation during the outage: %+v %v", res, err)
	}
	for _, h := range handles {
		if rg.conns.code(h) != connmgr.CodeRevoked {
			t.Fatalf("local connection of %s not closed with 4500", h)
		}
	}
	srv.Restart(persistent...)
	waitFor(t, generous, "both revocations confirmed", func() bool { return rg.r.Pending() == 0 })
	exists, err := store.Exists(ctx, handles, false)
	if err != nil {
		t.Fatal(err)
	}
	for i, ok := range exists {
		if ok {
			t.Fatalf("session %d still in Redis after its revocation was confirmed", i)
		}
	}
	var sessionEv, userEv int
	for _, e := range bus.accepted() {
		switch {
		case e.Kind == pubsub.KindSessionRevoked && e.Handle == handles[0]:
			sessionEv++
		case e.Kind == pubsub.KindUserRevoked && e.UserID == "rue" && len(e.Handles) == 2:
			userEv++
		}
	}
	if sessionEv != 1 || userEv != 1 {
		t.Fatalf("announced after recovery: %d session, %d user events; want 1 and 1", sessionEv, userEv)
	}
}
