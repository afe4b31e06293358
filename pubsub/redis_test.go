package pubsub

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

func TestRedisBusAcrossInstances(t *testing.T) {
	srv := redistest.Start(t)
	a := newRedisBusT(t, srv, RedisConfig{})
	b := newRedisBusT(t, srv, RedisConfig{})
	ra, rb := startRecorded(t, a), startRecorded(t, b)
	if err := a.Publish(context.Background(), msg(1)); err != nil {
		t.Fatal(err)
	}
	ra.next(t, 1)
	rb.next(t, 1)
}

func TestRedisBusSkipsBadPayloads(t *testing.T) {
	srv := redistest.Start(t)
	bus := newRedisBusT(t, srv, RedisConfig{Channel: "test:raw"})
	r := startRecorded(t, bus)
	raw := newClient(t, srv.Addr())
	bad := []string{
		"\x00\xff garbage",
		`{"v":2,"kind":"session.revoked","origin":"o","handle":"h"}`,
		`{"v":1,"kind":"session.exploded","origin":"o"}`,
		`{"v":1,"kind":"message","id":"1","origin":"o","event":"n"}`,
		`{"v":1,"kind":"message","id":"1","origin":"o","event":"n","target":{"user_id":"a","handle":"h"}}`,
		`{"v":1,"kind":"message","id":"1","origin":"o","event":"n","target":{"all":true},"data":"` +
			strings.Repeat("x", MaxEventBytes) + `"}`,
	}
	for _, p := range bad {
		if err := raw.Publish(context.Background(), "test:raw", p).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := bus.Publish(context.Background(), msg(42)); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-r.events:
		if seq(e) != 42 {
			t.Fatalf("first delivered event = %+v, want message 42", e)
		}
	case <-time.After(waitFor):
		t.Fatal("good event after bad payloads not delivered")
	}
	if got := bus.Malformed(); got != uint64(len(bad)) {
		t.Fatalf("Malformed() = %d, want %d", got, len(bad))
	}
	if n := r.count("gap:"); n != 0 {
		t.Fatalf("bad payloads reported %d gaps: %v", n, r.calls())
	}
}

// assertGapThenSubscribed checks that a gap was reported and that a new
// subscription followed it.
func assertGapThenSubscribed(t *testing.T, r *recorder) {
	t.Helper()
	eventually(t, "gap then resubscribe", func() bool {
		calls := r.calls()
		gap := -1
		for i, c := range calls {
			if gap < 0 && strings.HasPrefix(c, "gap:subscription lost") {
				gap = i
			}
			if gap >= 0 && i > gap && c == "subscribed" {
				return true
			}
		}
		return false
	})
}

func TestRedisBusSubscriberKilled(t *testing.T) {
	srv := redistest.Start(t)
	bus := newRedisBusT(t, srv, RedisConfig{})
	r := startRecorded(t, bus)
	if reply, err := srv.Do("CLIENT KILL TYPE pubsub"); err != nil || reply != ":1" {
		t.Fatalf("CLIENT KILL = %q, %v; want one client killed", reply, err)
	}
	assertGapThenSubscribed(t, r)
	if err := bus.Publish(context.Background(), msg(1)); err != nil {
		t.Fatal(err)
	}
	r.next(t, 1)
}

func TestRedisBusServerRestart(t *testing.T) {
	srv := redistest.Start(t)
	core, logs := observer.New(zapcore.DebugLevel)
	bus := NewRedisBus(newClient(t, srv.Addr()), RedisConfig{Channel: "test:events", PublishTimeout: 200 * time.Millisecond},
		zap.New(zapcore.NewTee(core, zaptest.NewLogger(t).Core())))
	r := startRecorded(t, bus)
	srv.Stop()
	eventually(t, "gap after stop", func() bool { return r.count("gap:subscription lost") > 0 })
	if err := bus.Publish(context.Background(), msg(0)); err == nil {
		t.Fatal("Publish with the server down returned nil")
	}
	// A few failed resubscribe attempts, counted, before Redis comes back.
	eventually(t, "three failed resubscribe attempts", func() bool { return logs.FilterMessage("pub/sub resubscribing").Len() >= 3 })
	srv.Restart()
	assertGapThenSubscribed(t, r)
	if n := r.count("gap:"); n != 1 {
		t.Errorf("one outage reported %d gaps: %v", n, r.calls())
	}
	publishEventually(t, bus, msg(1))
	r.next(t, 1)
}

func TestRedisBusUnresponsiveServer(t *testing.T) {
	srv := redistest.Start(t)
	bus := newRedisBusT(t, srv, RedisConfig{PingInterval: 50 * time.Millisecond})
	r := startRecorded(t, bus)
	// The server answers nothing for a while (TCP stays up, no reply comes).
	// The bus must notice within the pause; a machine too loaded to run its
	// health check in time gets a longer pause, not a failure: the property
	// is that a hang is detected, not how fast.
	for pause := 2 * time.Second; ; pause *= 2 {
		if pause > 32*time.Second {
			t.Fatal("no gap reported while Redis was paused")
		}
		if reply, err := srv.Do(fmt.Sprintf("CLIENT PAUSE %d ALL", pause.Milliseconds())); err != nil || reply != "+OK" {
			t.Fatalf("CLIENT PAUSE = %q, %v", reply, err)
		}
		end := time.Now().Add(pause)
		for time.Now().Before(end) && r.count("gap:subscription lost") == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		if r.count("gap:subscription lost") > 0 {
			break
		}
	}
	assertGapThenSubscribed(t, r)
	publishEventually(t, bus, msg(1))
	r.next(t, 1)
}

func TestRedisBusBufferOverflow(t *testing.T) {
	srv := redistest.Start(t)
	bus := newRedisBusT(t, srv, RedisConfig{Buffer: 2})
	gaps := make(chan string, 100)
	subscribed := make(chan struct{}, 10)
	bus.OnGap(func(reason string) {
		select {
		case gaps <- reason:
		default:
		}
	})
	bus.OnSubscribed(func() {
		select {
		case subscribed <- struct{}{}:
		default:
		}
	})
	release := make(chan struct{})
	got := make(chan Event, 100)
	runBus(t, bus, func(ctx context.Context, e Event) {
		select {
		case <-release:
		case <-ctx.Done():
		}
		got <- e
	})
	select {
	case <-subscribed:
	case <-time.After(waitFor):
		t.Fatal("not subscribed")
	}
	const n = 20
	for i := 0; i < n; i++ {
		if err := bus.Publish(context.Background(), msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case reason := <-gaps:
		if reason != "buffer overflow" {
			t.Fatalf("gap reason %q", reason)
		}
	case <-time.After(waitFor):
		t.Fatal("no gap reported for a full buffer")
	}
	// The subscription is still there: it is reported subscribed again
	// after the gap, or its user would wait for a resubscription forever.
	select {
	case <-subscribed:
	case <-time.After(waitFor):
		t.Fatal("not reported subscribed again after the overflow")
	}
	eventually(t, "drops counted", func() bool { return bus.Dropped() > 0 })
	close(release)
	// The bus keeps delivering after an overflow. The first events after the
	// release may still meet a full buffer while the handler catches up, so
	// publish until one gets through; every event must be either delivered
	// or counted as dropped.
	published, delivered, after := n, 0, false
	deadline := time.Now().Add(waitFor)
	for !after {
		if time.Now().After(deadline) {
			t.Fatal("bus stopped delivering after an overflow")
		}
		if err := bus.Publish(context.Background(), msg(100+published)); err != nil {
			t.Fatal(err)
		}
		published++
		for drained := false; !drained; {
			select {
			case e := <-got:
				delivered++
				after = after || seq(e) >= 100
			case <-time.After(20 * time.Millisecond):
				drained = true
			}
		}
	}
	eventually(t, "every event delivered or dropped", func() bool {
		for {
			select {
			case <-got:
				delivered++
				continue
			default:
			}
			return uint64(delivered)+bus.Dropped() == uint64(published)
		}
	})
}
