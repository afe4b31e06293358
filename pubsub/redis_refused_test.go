package pubsub

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// observedLogger returns a logger writing to the test log and to an
// observer the test can wait on.
func observedLogger(t *testing.T) (*zap.Logger, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	base := zaptest.NewLogger(t)
	return zap.New(zapcore.NewTee(base.Core(), core)), logs
}

// loggedErrors counts the lines that logged an error containing s.
func loggedErrors(logs *observer.ObservedLogs, s string) int {
	n := 0
	for _, e := range logs.All() {
		for _, f := range e.Context {
			if f.Key != "error" {
				continue
			}
			if err, ok := f.Interface.(error); ok && strings.Contains(err.Error(), s) {
				n++
			}
		}
	}
	return n
}

// refusals counts the resubscribe attempts that met an ACL refusal (the
// debug line every failed attempt logs, old and new code alike).
func refusals(logs *observer.ObservedLogs) int {
	return loggedErrors(logs.FilterMessage("pub/sub resubscribing"), "NOPERM")
}

// mustDo runs one command on srv and fails unless the reply is want.
func mustDo(t *testing.T, srv *redistest.Server, command, want string) {
	t.Helper()
	if reply, err := srv.Do(command); err != nil || reply != want {
		t.Fatalf("%s = %q, %v; want %q", command, reply, err, want)
	}
}

// TestRedisBusRecoversFromRefusedResubscribe is issue 9 item 2: Redis
// refuses the re-SUBSCRIBE after the subscriber was cut, then allows it
// again. Every instance must resubscribe by itself, with no restart.
func TestRedisBusRecoversFromRefusedResubscribe(t *testing.T) {
	srv := redistest.Start(t)
	const instances = 2
	type inst struct {
		bus  *RedisBus
		rec  *recorder
		logs *observer.ObservedLogs
	}
	var all []inst
	for range instances {
		log, logs := observedLogger(t)
		bus := NewRedisBus(newClient(t, srv.Addr()), RedisConfig{Channel: "test:events"}, log)
		all = append(all, inst{bus: bus, rec: startRecorded(t, bus), logs: logs})
	}
	raw := newClient(t, srv.Addr())
	numsub := func() int64 {
		n, err := raw.PubSubNumSub(context.Background(), "test:events").Result()
		if err != nil {
			return -1
		}
		return n["test:events"]
	}
	if n := numsub(); n != instances {
		t.Fatalf("PUBSUB NUMSUB = %d before the cut, want %d", n, instances)
	}

	mustDo(t, srv, "ACL SETUSER default -subscribe", "+OK")
	restored := false
	restore := func() {
		if !restored {
			restored = true
			mustDo(t, srv, "ACL SETUSER default +@all", "+OK")
		}
	}
	t.Cleanup(restore)
	mustDo(t, srv, "CLIENT KILL TYPE pubsub", ":2")

	// Every instance reports the gap and keeps retrying into the refusal
	// before Redis allows SUBSCRIBE again.
	for i, in := range all {
		eventually(t, "gap reported", func() bool { return in.rec.count("gap:subscription lost") == 1 })
		eventually(t, "refused resubscribe retried", func() bool { return refusals(in.logs) >= 3 })
		if n := in.rec.count("subscribed"); n != 1 {
			t.Fatalf("instance %d: subscribed %d times while SUBSCRIBE is refused", i, n)
		}
	}
	if n := numsub(); n != 0 {
		t.Fatalf("PUBSUB NUMSUB = %d while SUBSCRIBE is refused, want 0", n)
	}
	restore()

	for _, in := range all {
		assertGapThenSubscribed(t, in.rec)
	}
	eventually(t, "PUBSUB NUMSUB back", func() bool { return numsub() == instances })
	if err := all[0].bus.Publish(context.Background(), msg(1)); err != nil {
		t.Fatal(err)
	}
	for _, in := range all {
		in.rec.next(t, 1)
		if n := in.rec.count("gap:"); n != 1 {
			t.Errorf("one outage reported %d gaps: %v", n, in.rec.calls())
		}
	}
}

// TestRedisBusResubscribeNeverAnswered: the subscription is cut, and the
// SUBSCRIBE on the new connection is taken but never answered (no
// confirmation, no error). The bus must not wait on it forever.
func TestRedisBusResubscribeNeverAnswered(t *testing.T) {
	srv := redistest.Start(t)
	px := startProxy(t, srv.Addr())
	bus := NewRedisBus(newClient(t, px.Addr()), RedisConfig{Channel: "test:events",
		PingInterval: 100 * time.Millisecond}, zaptest.NewLogger(t))
	r := startRecorded(t, bus)

	px.muteSubscribe.Store(true)
	px.cutAll()
	eventually(t, "gap reported", func() bool { return r.count("gap:subscription lost") >= 1 })
	// Every unanswered SUBSCRIBE is a hang; several prove that the bus gave
	// up on each and tried again (go-redis itself may send one more right
	// after the cut).
	eventually(t, "unanswered SUBSCRIBE retried", func() bool { return px.muted.Load() >= 3 })
	px.muteSubscribe.Store(false)

	assertGapThenSubscribed(t, r)
	raw := newClient(t, srv.Addr())
	eventually(t, "PUBSUB NUMSUB back to 1", func() bool {
		n, err := raw.PubSubNumSub(context.Background(), "test:events").Result()
		return err == nil && n["test:events"] == 1
	})
	publishEventually(t, bus, msg(1))
	r.next(t, 1)
}
