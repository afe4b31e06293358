package revocation

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zapcore"

	"github.com/sessiongate/sessiongate/connmgr"
	"github.com/sessiongate/sessiongate/internal/logfield"
	"github.com/sessiongate/sessiongate/internal/redistest"
	"github.com/sessiongate/sessiongate/pubsub"
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

// A session a pass found gone is tombstoned: a handshake that found it
// before the pass (in a session cache, or in the store before the delete
// whose event was lost) and registers its connection after the pass closed
// the others is closed by CloseIfRevokedMeanwhile, and the next handshake
// is refused without a store read. A reset's lost sessions are not.
func TestReconcileTombstonesWhatIsGone(t *testing.T) {
	rg := newRig(t, rigOptions{})
	now := rg.clock.Now()
	rg.fs.put("quin", "kept")
	rg.conns.open("quin", "kept", 1, now.Add(time.Hour))
	rg.conns.open("quin", "gone", 2, now.Add(time.Hour))
	reconcileOnce(t, rg, "pub/sub subscribed")
	if rg.conns.code("gone") != connmgr.CodeRevoked {
		t.Fatalf("gone closed with %d", rg.conns.code("gone"))
	}
	if !rg.r.Revoked("gone") || rg.r.Revoked("kept") {
		t.Fatalf("tombstones after the pass: gone %v, kept %v; want true, false", rg.r.Revoked("gone"), rg.r.Revoked("kept"))
	}
	rg.conns.open("quin", "gone", 1, now.Add(time.Hour)) // the straggling handshake
	if !rg.r.CloseIfRevokedMeanwhile("gone", "quin") || rg.conns.isOpen("gone") {
		t.Fatal("a connection registered after the pass stays open")
	}

	rg.fs.reset("gen-2")
	rg.fs.put("quin", "kept")
	rg.conns.open("quin", "lost", 1, now.Add(time.Hour))
	reconcileOnce(t, rg, "sweep")
	if rg.conns.code("lost") != connmgr.CodeSessionLost || rg.r.Revoked("lost") {
		t.Fatalf("a reset's session: closed with %d, tombstoned %v; want 4504, false", rg.conns.code("lost"), rg.r.Revoked("lost"))
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

// A delete the store acknowledged can be undone by a Redis failover (the
// replica promoted never got it). Every pass checks the sessions this
// instance holds tombstones for, its own revocations and its peers', and
// revokes again any that is back; those younger than StoreTimeout are left
// to the delete that may still be in flight, and an expired tombstone is
// forgotten.
func TestReconcileRevokesUndoneRevocations(t *testing.T) {
	rg := newRig(t, rigOptions{cfg: Config{StoreTimeout: time.Second, TombstoneTTL: time.Minute}})
	ctx := context.Background()
	rg.fs.put("ann", "own", "peers", "kept", "gone")
	if res := rg.r.RevokeSession(ctx, "own", "test"); res.Pending || !res.Existed {
		t.Fatalf("revoke: %+v", res)
	}
	rg.r.HandleEvent(pubsub.Event{Kind: pubsub.KindSessionRevoked, Handle: "peers", Origin: "peer"})
	rg.r.RevokeSession(ctx, "gone", "test")
	published := len(rg.bus.events())

	// The failover: "own" is back; "peers" is still there (the peer's
	// delete was lost, or is in flight).
	rg.fs.put("ann", "own")
	reconcileOnce(t, rg, "sweep")
	if !rg.fs.has("own") || !rg.fs.has("peers") || rg.logs.FilterMessage("revocation undone").Len() != 0 {
		t.Fatal("a tombstone younger than StoreTimeout was acted on")
	}

	rg.clock.Add(time.Second)
	reconcileOnce(t, rg, "sweep")
	if rg.fs.has("own") || rg.fs.has("peers") || !rg.fs.has("kept") {
		t.Fatalf("after the pass: own %v peers %v kept %v", rg.fs.has("own"), rg.fs.has("peers"), rg.fs.has("kept"))
	}
	var again []string
	for _, e := range rg.bus.events()[published:] {
		if e.Kind == pubsub.KindSessionRevoked {
			again = append(again, e.Handle)
		}
	}
	if slices.Sort(again); !slices.Equal(again, []string{"own", "peers"}) {
		t.Fatalf("events published again: %v, want own and peers", again)
	}
	if n := rg.logs.FilterMessage("revocation undone").FilterLevelExact(zapcore.WarnLevel).Len(); n != 2 {
		t.Fatalf("%d revocation undone warnings, want 2", n)
	}
	if rg.metric(t, "sessiongate_revocations_undone_total") != 2 {
		t.Fatal("undone revocations not counted")
	}
	if !rg.r.Revoked("own") || !rg.r.Revoked("peers") {
		t.Fatal("tombstones dropped")
	}

	// Store down: the pass fails rather than passing over the check.
	rg.fs.put("ann", "own")
	rg.fs.down.Store(true)
	if ok, _ := rg.r.reconcile(ctx, "sweep"); ok {
		t.Fatal("a pass that could not check the tombstones succeeded")
	}
	rg.fs.down.Store(false)

	// Past the tombstone's lifetime the handle is no longer checked.
	rg.clock.Add(time.Minute)
	reconcileOnce(t, rg, "sweep")
	if !rg.fs.has("own") {
		t.Fatal("a session checked past its tombstone's lifetime")
	}
}

// switchStore is a Store whose Redis can be switched, as a client follows a
// promoted replica.
type switchStore struct {
	cur atomic.Pointer[session.RedisStore]
}

func (s *switchStore) Destroy(ctx context.Context, h string) (bool, error) {
	return s.cur.Load().Destroy(ctx, h)
}
func (s *switchStore) DestroyUser(ctx context.Context, u string) ([]string, error) {
	return s.cur.Load().DestroyUser(ctx, u)
}
func (s *switchStore) Exists(ctx context.Context, hs []string, touch bool) ([]bool, error) {
	return s.cur.Load().Exists(ctx, hs, touch)
}
func (s *switchStore) Generation(ctx context.Context) (string, error) {
	return s.cur.Load().Generation(ctx)
}
func (s *switchStore) Indexed(ctx context.Context, refs []session.IndexRef) ([]bool, error) {
	return s.cur.Load().Indexed(ctx, refs)
}

// The undone revocation on real redis-servers: a replica promoted before it
// got the delete has the session again, and the next pass revokes it there.
func TestReconcileRevokesUndoneRevocationRealRedis(t *testing.T) {
	master := redistest.Start(t)
	replica := redistest.Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port()))
	storeOn := func(addr string) *session.RedisStore {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { rdb.Close() })
		return newRedisStore(t, rdb)
	}
	onMaster, onReplica := storeOn(master.Addr()), storeOn(replica.Addr())
	sw := &switchStore{}
	sw.cur.Store(onMaster)
	rg := newRig(t, rigOptions{store: sw, cfg: Config{StoreTimeout: time.Second}})
	ctx := context.Background()

	_, s, err := onMaster.Create(ctx, "pat", nil)
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handle
	waitFor(t, generous, "the session on the replica", func() bool {
		ok, err := onReplica.Exists(ctx, []string{h}, false)
		return err == nil && ok[0]
	})
	// The failover: the replica is promoted before it gets the delete.
	if _, err := replica.Do("REPLICAOF NO ONE"); err != nil {
		t.Fatal(err)
	}
	if res := rg.r.RevokeSession(ctx, h, "test"); res.Pending || !res.Existed {
		t.Fatalf("revoke on the master: %+v", res)
	}
	sw.cur.Store(onReplica)
	if ok, err := onReplica.Exists(ctx, []string{h}, false); err != nil || !ok[0] {
		t.Fatalf("the promoted replica should have the session back: %v %v", ok, err)
	}
	if !rg.r.Revoked(h) {
		t.Fatal("no tombstone: the session's handshakes would pass meanwhile")
	}

	rg.clock.Add(time.Second)
	reconcileOnce(t, rg, "sweep")
	if ok, err := onReplica.Exists(ctx, []string{h}, false); err != nil || ok[0] {
		t.Fatalf("after the pass the new master still has the session: %v %v", ok, err)
	}
	evs := rg.bus.events()
	if last := evs[len(evs)-1]; last.Kind != pubsub.KindSessionRevoked || last.Handle != h {
		t.Fatalf("last event %+v, want the session revoked again", last)
	}
	if rg.metric(t, "sessiongate_revocations_undone_total") != 1 {
		t.Fatal("not counted")
	}
}

// The generation against a real redis-server: FLUSHALL and a restart
// without persistence are each one store reset, and the sessions they took
// close with 4504.
func TestReconcileStoreResetRealRedis(t *testing.T) {
	srv := redistest.Start(t) // --save "" --appendonly no: a restart loses everything
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	store := newRedisStore(t, rdb)
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

// A login whose user-index entry a failover lost, while its session
// survived, is revoked by the pass that finds it: revoking the user could
// not find it. Indexed logins are left alone, young ones are not checked,
// gone ones are forgotten, and the checks end with the tombstone lifetime.
func TestReconcileRevokesUnindexedLogins(t *testing.T) {
	rg := newRig(t, rigOptions{cfg: Config{StoreTimeout: time.Second, TombstoneTTL: time.Minute}})
	ctx := context.Background()
	exp := rg.clock.Now().Add(time.Hour)
	for _, l := range [][2]string{{"bob", "kept"}, {"ann", "lost"}, {"ann", "gone"}} {
		rg.fs.put(l[0], l[1])
		rg.conns.open(l[0], l[1], 2, exp)
		rg.r.Created(l[0], l[1])
	}
	rg.fs.unindex("lost")
	rg.fs.unindex("gone")
	if _, err := rg.fs.Destroy(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	// What the audit is for: revoking the user misses "lost".
	if res, err := rg.r.RevokeUser(ctx, "ann", "test"); err != nil || res.Pending || res.Sessions != 0 || !rg.fs.has("lost") {
		t.Fatalf("RevokeUser = %+v, %v; lost still there: %v", res, err, rg.fs.has("lost"))
	}

	reconcileOnce(t, rg, "sweep")
	if rg.fs.count("indexed") != 0 {
		t.Fatal("logins younger than StoreTimeout were checked: their writes may be in flight")
	}

	rg.clock.Add(time.Second)
	published := len(rg.bus.events())
	reconcileOnce(t, rg, "sweep")
	if rg.fs.has("lost") || !rg.fs.has("kept") {
		t.Fatalf("after the pass: lost %v kept %v", rg.fs.has("lost"), rg.fs.has("kept"))
	}
	if code := rg.conns.code("lost"); code != connmgr.CodeRevoked {
		t.Fatalf("lost's connections closed with %d, want 4500", code)
	}
	if code := rg.conns.code("kept"); code != 0 {
		t.Fatalf("kept's connections closed with %d", code)
	}
	var evs []string
	for _, e := range rg.bus.events()[published:] {
		evs = append(evs, string(e.Kind)+" "+e.Handle)
	}
	if want := []string{string(pubsub.KindSessionRevoked) + " lost"}; !slices.Equal(evs, want) {
		t.Fatalf("events %v, want %v", evs, want)
	}
	if !rg.r.Revoked("lost") {
		t.Fatal("no tombstone for the revoked login")
	}
	if n := rg.logs.FilterMessage("session unindexed").FilterLevelExact(zapcore.WarnLevel).Len(); n != 1 {
		t.Fatalf("%d session unindexed warnings, want 1", n)
	}
	if rg.metric(t, "sessiongate_sessions_unindexed_total") != 1 {
		t.Fatal("not counted")
	}
	if n := rg.r.logins.len(); n != 1 {
		t.Fatalf("%d logins still checked, want 1 (kept): lost and gone are over", n)
	}

	// Store down: the pass fails rather than passing over the check.
	rg.fs.down.Store(true)
	if ok, _ := rg.r.reconcile(ctx, "sweep"); ok {
		t.Fatal("a pass that could not check the logins succeeded")
	}
	rg.fs.down.Store(false)

	// Past the tombstone lifetime a login is no longer checked.
	rg.clock.Add(time.Minute)
	rg.fs.unindex("kept")
	reconcileOnce(t, rg, "sweep")
	if !rg.fs.has("kept") || rg.r.logins.len() != 0 {
		t.Fatalf("a login checked past the tombstone lifetime: kept %v, %d logins", rg.fs.has("kept"), rg.r.logins.len())
	}
}

// On a real Redis Cluster: the master holding a user's index dies before
// its replica got a login's SADD, while the session key, on another
// master, survives. Revoking the user then confirms without the session;
// the next pass finds the login unindexed and revokes it.
func TestReconcileRevokesLoginsAFailoverUnindexedRealCluster(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3, Replicas: 1})
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), DialTimeout: time.Second, MaxRetries: 1, DialerRetries: 1})
	t.Cleanup(func() { rdb.Close() })
	store := newRedisStore(t, rdb)
	rg := newRig(t, rigOptions{store: store, cfg: Config{StoreTimeout: 5 * time.Second, TombstoneTTL: 10 * time.Minute}})
	ctx := context.Background()

	indexMaster := c.MasterOfKey("rv:u:pat")
	replica := c.ReplicasOf(indexMaster)[0]
	var control string // another user's login, on masters that do not fail
	for u := 0; control == ""; u++ {
		user := fmt.Sprintf("kim%d", u)
		if c.MasterOfKey("rv:u:"+user) == indexMaster {
			continue
		}
		_, s, err := store.Create(ctx, user, nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.MasterOfKey("rv:s:"+s.Handle) != indexMaster {
			control = s.Handle
			rg.r.Created(user, s.Handle)
		}
	}
	// The replica stops taking the master's writes: paused, and its
	// replication link cut (what the master sent before stays in the
	// paused replica's socket buffer and is applied later). Whatever pat's
	// logins add to the index from now on is the master's alone.
	c.Pause(replica)
	if n, err := indexMaster.Do("CLIENT KILL TYPE replica"); err != nil || n != ":1" {
		t.Fatalf("CLIENT KILL TYPE replica on the index's master: %q, %v", n, err)
	}
	var lost string
	for lost == "" {
		_, s, err := store.Create(ctx, "pat", nil)
		if err != nil {
			t.Fatal(err)
		}
		rg.r.Created("pat", s.Handle)
		if c.MasterOfKey("rv:s:"+s.Handle) != indexMaster {
			lost = s.Handle // its session key survives the failover
		}
	}
	c.Kill(indexMaster)
	c.Cont(replica)
	c.WaitHealthy() // the replica, without pat's new index entries, is the master
	var destroyed []string
	waitFor(t, generous, "the client to follow the failover", func() bool {
		var err error
		rdb.ReloadState(ctx)
		destroyed, err = store.DestroyUser(ctx, "pat")
		return err == nil
	})
	if ok, err := store.Exists(ctx, []string{lost}, false); err != nil || !ok[0] || slices.Contains(destroyed, lost) {
		t.Fatalf("after revoking pat (destroyed %d sessions): %s exists %v, %v; the failover should have unindexed it", len(destroyed), logfield.ShortHandle(lost), ok, err)
	}

	rg.clock.Add(5 * time.Second)
	reconcileOnce(t, rg, "sweep")
	if ok, err := store.Exists(ctx, []string{lost, control}, false); err != nil || ok[0] || !ok[1] {
		t.Fatalf("after the pass: lost, control exist = %v, %v; want false, true", ok, err)
	}
	if rg.metric(t, "sessiongate_sessions_unindexed_total") != 1 {
		t.Fatal("not counted")
	}
}
