package revocation

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zapcore"

	"github.com/sessiongate/sessiongate/connmgr"
	"github.com/sessiongate/sessiongate/internal/redistest"
	"github.com/sessiongate/sessiongate/session"
)

// reconcileOnce runs one pass as the loop would.
func reconcileOnce(t *testing.T, rg *rig, reason string) {
	t.Helper()
	if ok, _ := rg.r.reconcile(context.Background(), reason); !ok {
		t.Fatalf("reconcile pass (%s) failed", reason)
	}
}

func TestReconcileClosesWhatIsGone(t *testing.T) {
	rg := newRig(t, rigOptions{})
	now := rg.clock.Now()
	rg.fs.put("mo", "live")
	rg.conns.open("mo", "live", 1, now.Add(time.Hour))
	rg.conns.open("mo", "revoked", 2, now.Add(time.Hour))
	rg.conns.open("mo", "expired", 1, now.Add(-time.Second))
	reconcileOnce(t, rg, "sweep")
	if !rg.conns.isOpen("live") || rg.conns.code("revoked") != connmgr.CodeRevoked || rg.conns.code("expired") != connmgr.CodeExpired {
		t.Fatalf("codes: revoked %d expired %d, live open %v", rg.conns.code("revoked"), rg.conns.code("expired"), rg.conns.isOpen("live"))
	}
	if rg.metric(t, "sessiongate_reconcile_closed_total") != 3 || rg.metric(t, "sessiongate_store_resets_total") != 0 {
		t.Fatal("metrics")
	}
	// Only the sweep extends idle TTLs.
	reconcileOnce(t, rg, "pub/sub subscribed")
	if rg.fs.touched[0] != true || rg.fs.touched[len(rg.fs.touched)-1] != false {
		t.Fatalf("touch flags %v", rg.fs.touched)
	}
}

// Issue 9 item 7, at the unit's seams: when the store's generation changed,
// gone sessions were lost, not revoked: 4504, an ERROR line, a metric.
func TestReconcileStoreReset(t *testing.T) {
	rg := newRig(t, rigOptions{})
	now := rg.clock.Now()
	rg.fs.put("ned", "a", "b")
	rg.conns.open("ned", "a", 1, now.Add(time.Hour))
	rg.conns.open("ned", "b", 2, now.Add(time.Hour))
	reconcileOnce(t, rg, "sweep")

	rg.fs.reset("gen-2")
	rg.fs.put("ned", "b") // b survives (say, re-created by a replica)
	rg.conns.open("ned", "c", 1, now.Add(-time.Second))
	reconcileOnce(t, rg, "pub/sub subscribed")
	if rg.conns.code("a") != connmgr.CodeSessionLost || !rg.conns.isOpen("b") || rg.conns.code("c") != connmgr.CodeExpired {
		t.Fatalf("codes: a %d c %d, b open %v", rg.conns.code("a"), rg.conns.code("c"), rg.conns.isOpen("b"))
	}
	l := rg.logs.FilterMessage("session store reset").All()
	if len(l) != 1 || l[0].Level != zapcore.ErrorLevel || l[0].ContextMap()["sessions_lost"] != int64(1) {
		t.Fatalf("reset lines %+v", l)
	}
	if rg.metric(t, "sessiongate_store_resets_total") != 1 {
		t.Fatal("store reset not counted")
	}
	// The new generation is the normal one now: a gone session is revoked.
	rg.fs.reset("gen-2")
	reconcileOnce(t, rg, "sweep")
	if rg.conns.code("b") != connmgr.CodeRevoked || rg.metric(t, "sessiongate_store_resets_total") != 1 {
		t.Fatalf("after the reset: b closed with %d", rg.conns.code("b"))
	}
}

// A pass tells Forget of the sessions it found gone, and of a store reset,
// before it closes their connections: a session cache must not serve them
// to the clients reconnecting after the close.
func TestReconcileForgetsBeforeClosing(t *testing.T) {
	type call struct {
		handles  []string
		all      bool
		openThen bool // was "gone" still open when Forget ran
	}
	var calls []call
	var rg *rig
	rg = newRig(t, rigOptions{forget: func(hs []string, all bool) {
		calls = append(calls, call{handles: hs, all: all, openThen: rg.conns.isOpen("gone")})
	}})
	now := rg.clock.Now()
	rg.fs.put("pat", "kept")
	rg.conns.open("pat", "kept", 1, now.Add(time.Hour))
	rg.conns.open("pat", "gone", 1, now.Add(time.Hour))
	reconcileOnce(t, rg, "sweep")
	if len(calls) != 1 || calls[0].all || len(calls[0].handles) != 1 || calls[0].handles[0] != "gone" || !calls[0].openThen {
		t.Fatalf("Forget calls %+v: want one for [gone], before its close", calls)
	}
	if rg.conns.isOpen("gone") {
		t.Fatal("gone still open")
	}

	calls = nil
	rg.fs.reset("gen-2")
	rg.fs.put("pat", "kept")
	rg.conns.open("pat", "gone", 1, now.Add(time.Hour))
	reconcileOnce(t, rg, "sweep")
	if len(calls) != 2 || !calls[0].all || !calls[0].openThen {
		t.Fatalf("Forget calls after a reset %+v: want all first, before any close", calls)
	}

	// A reset with no connection here still empties the caches.
	calls = nil
	rg.conns.CloseSession("kept", connmgr.CodeRevoked)
	rg.fs.reset("gen-3")
	reconcileOnce(t, rg, "sweep")
	if len(calls) != 1 || !calls[0].all {
		t.Fatalf("Forget calls after a reset with no connections %+v: want all", calls)
	}
}

// A failed pass retries with backoff, warns once per outage, and closes
// what is gone once the store answers.
func TestReconcileRetriesAfterFailure(t *testing.T) {
	rg := newRig(t, rigOptions{cfg: Config{SweepInterval: time.Hour}})
	rg.conns.open("ola", "gone", 1, time.Time{})
	rg.fs.down.Store(true)
	rg.run(t)
	rg.r.Trigger("test")
	waitFor(t, generous, "several failed passes", func() bool { return rg.metric(t, "sessiongate_reconcile_errors_total") >= 3 })
	if n := rg.logs.FilterMessage("reconcile failed").FilterLevelExact(zapcore.WarnLevel).Len(); n != 1 {
		t.Fatalf("%d warnings for one outage, want 1", n)
	}
	rg.fs.down.Store(false)
	waitFor(t, generous, "closed after recovery", func() bool { return rg.conns.code("gone") == connmgr.CodeRevoked })
	waitFor(t, generous, "recovery logged", func() bool {
		return rg.logs.FilterMessage("reconcile recovered").Len() == 1
	})
}

// The generation against a real redis-server: FLUSHALL and a restart
// without persistence are each one store reset, and the sessions they took
// close with 4504.
func TestReconcileStoreResetRealRedis(t *testing.T) {
	srv := redistest.Start(t) // --save "" --appendonly no: a restart loses everything
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	codec, err := session.NewCodec([]byte("0123456789abcdef0123456789abcdef-revocation"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := session.NewKeyring([][]byte{[]byte("kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk")})
	if err != nil {
		t.Fatal(err)
	}
	store, err := session.NewRedisStore(rdb, codec, keys, session.Options{Prefix: "rv:"})
	if err != nil {
		t.Fatal(err)
	}
	rg := newRig(t, rigOptions{store: store})
	ctx := context.Background()
	open := func(user string) string {
		t.Helper()
		_, s, err := store.Create(ctx, user, nil)
		if err != nil {
			t.Fatal(err)
		}
		rg.conns.open(user, s.Handle, 1, s.ExpiresAt)
		return s.Handle
	}

	h1 := open("pat")
	reconcileOnce(t, rg, "sweep")
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	reconcileOnce(t, rg, "sweep")
	if rg.conns.code(h1) != connmgr.CodeSessionLost {
		t.Fatalf("after FLUSHALL: close code %d, want 4504", rg.conns.code(h1))
	}

	h2 := open("pat")
	reconcileOnce(t, rg, "sweep")
	srv.Restart()
	reconcileOnce(t, rg, "pub/sub subscribed")
	if rg.conns.code(h2) != connmgr.CodeSessionLost {
		t.Fatalf("after a restart without persistence: close code %d, want 4504", rg.conns.code(h2))
	}
	if n := rg.metric(t, "sessiongate_store_resets_total"); n != 2 {
		t.Fatalf("%v store resets counted, want 2", n)
	}

	// With the data set intact, a deleted session is a revocation.
	h3 := open("pat")
	reconcileOnce(t, rg, "sweep")
	if _, err := store.Destroy(ctx, h3); err != nil {
		t.Fatal(err)
	}
	reconcileOnce(t, rg, "sweep")
	if rg.conns.code(h3) != connmgr.CodeRevoked {
		t.Fatalf("a destroyed session closed with %d, want 4500", rg.conns.code(h3))
	}
}
