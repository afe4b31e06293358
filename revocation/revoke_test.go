package revocation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"

	"github.com/sessiongate/sessiongate/connmgr"
	"github.com/sessiongate/sessiongate/pubsub"
	"github.com/sessiongate/sessiongate/session"
)

func TestNewRefusesBadConfig(t *testing.T) {
	d := Deps{Store: newFakeStore(), Bus: &fakeBus{}, Conns: newFakeConns(), Log: nil}
	for _, tc := range []struct {
		name string
		cfg  Config
		d    Deps
	}{
		{name: "no instance id", cfg: Config{}, d: d},
		{name: "no logger", cfg: Config{InstanceID: "a"}, d: d},
		{name: "negative sweep", cfg: Config{InstanceID: "a", SweepInterval: -time.Second}, d: d},
		{name: "negative bound", cfg: Config{InstanceID: "a", MaxTombstones: -1}, d: d},
		{name: "too many handles per event", cfg: Config{InstanceID: "a", HandlesPerEvent: pubsub.MaxRevokedHandles + 1}, d: d},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg, tc.d); !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("New: %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := Config{InstanceID: "a", SweepInterval: 2 * time.Second}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.TombstoneTTL != time.Minute || c.RetryMax != 2*time.Second || c.HandlesPerEvent != pubsub.MaxRevokedHandles ||
		c.MaxTombstones != 100_000 || c.StoreTimeout != 5*time.Second {
		t.Fatalf("defaults: %+v", c)
	}
	c, _ = Config{InstanceID: "a", SweepInterval: time.Hour}.withDefaults()
	if c.TombstoneTTL != 2*time.Hour || c.RetryMax != 10*time.Second {
		t.Fatalf("defaults for a long sweep: %+v", c)
	}
}

func TestRevokeSessionConfirmed(t *testing.T) {
	rg := newRig(t, rigOptions{})
	rg.fs.put("ann", "h1")
	rg.conns.open("ann", "h1", 2, time.Time{})
	res := rg.r.RevokeSession(context.Background(), "h1", "api")
	if res != (Result{Existed: true, ClosedLocal: 2}) {
		t.Fatalf("result %+v", res)
	}
	if rg.conns.code("h1") != connmgr.CodeRevoked || rg.fs.has("h1") {
		t.Fatal("not closed with 4500 and deleted")
	}
	evs := rg.bus.events()
	if len(evs) != 1 || evs[0].Kind != pubsub.KindSessionRevoked || evs[0].Handle != "h1" || evs[0].Origin != "self" {
		t.Fatalf("events %+v", evs)
	}
	if !rg.r.Revoked("h1") {
		t.Fatal("not tombstoned")
	}
	rg.clock.Add(rg.r.cfg.TombstoneTTL)
	if rg.r.Revoked("h1") {
		t.Fatal("a confirmed tombstone outlived its ttl")
	}
	if rg.r.Pending() != 0 || rg.metric(t, "sessiongate_revocations_total") != 1 {
		t.Fatal("metrics or queue wrong")
	}
}

// An unknown session is not queued even when the bus is down: nothing in
// the store to revoke, and the sweep closes connections of gone sessions.
func TestRevokeUnknownSessionNotQueued(t *testing.T) {
	rg := newRig(t, rigOptions{})
	rg.bus.down.Store(true)
	if res := rg.r.RevokeSession(context.Background(), "nope", "api"); res.Pending || res.Existed {
		t.Fatalf("result %+v", res)
	}
	if rg.r.Pending() != 0 {
		t.Fatal("queued")
	}
}

// A request that was cancelled (the client hung up on its logout) still
// deletes the session.
func TestRevocationOutlivesItsRequest(t *testing.T) {
	rg := newRig(t, rigOptions{store: ctxStore{newFakeStore()}})
	fs := rg.store.(ctxStore).fakeStore
	fs.put("sam", "h")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if res := rg.r.RevokeSession(ctx, "h", "logout"); res.Pending || !res.Existed || fs.has("h") {
		t.Fatalf("result %+v, still stored %v", res, fs.has("h"))
	}
}

// ctxStore is a fakeStore that honours ctx, as real stores do.
type ctxStore struct{ *fakeStore }

func (s ctxStore) Destroy(ctx context.Context, h string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	return s.fakeStore.Destroy(ctx, h)
}

// Issue 9 item 3, at the unit's seams: the store is down, so the revocation
// closes locally, holds its tombstone past any ttl, is queued, and is
// confirmed once the store is back (deleted, then announced).
func TestRevokeSessionStoreDownIsQueued(t *testing.T) {
	rg := newRig(t, rigOptions{})
	rg.run(t)
	rg.fs.put("bo", "h")
	rg.conns.open("bo", "h", 1, time.Time{})
	rg.fs.down.Store(true)
	res := rg.r.RevokeSession(context.Background(), "h", "api")
	if !res.Pending || res.ClosedLocal != 1 || rg.conns.code("h") != connmgr.CodeRevoked {
		t.Fatalf("result %+v, close code %d", res, rg.conns.code("h"))
	}
	if rg.r.Pending() != 1 || rg.metric(t, "sessiongate_revocations_pending") != 1 {
		t.Fatal("not counted as pending")
	}
	if rg.logs.FilterMessage("revocation queued").FilterLevelExact(zapcore.WarnLevel).Len() != 1 {
		t.Fatal("no queued log line")
	}
	// The retry loop keeps failing meanwhile; the tombstone holds.
	waitFor(t, generous, "a few failed retries", func() bool { return rg.fs.count("destroy") >= 3 })
	rg.clock.Add(100 * rg.r.cfg.TombstoneTTL)
	if !rg.r.Revoked("h") {
		t.Fatal("a pending revocation's tombstone expired")
	}
	if !rg.fs.has("h") {
		t.Fatal("deleted while the store was down?")
	}

	rg.fs.down.Store(false)
	waitFor(t, generous, "revocation confirmed", func() bool { return rg.r.Pending() == 0 })
	if rg.fs.has("h") {
		t.Fatal("confirmed but still in the store")
	}
	evs := rg.bus.events()
	if len(evs) == 0 || evs[len(evs)-1].Handle != "h" {
		t.Fatalf("no event after the delete: %+v", evs)
	}
	l := rg.logs.FilterMessage("revocation confirmed").All()
	if len(l) != 1 || l[0].ContextMap()["existed"] != true {
		t.Fatalf("confirmed log lines: %+v", l)
	}
	if rg.metric(t, "sessiongate_revocations_pending") != 0 {
		t.Fatal("pending gauge not back to 0")
	}
	// Now a normal tombstone: one ttl from the confirmation.
	if !rg.r.Revoked("h") {
		t.Fatal("tombstone dropped at confirmation")
	}
	rg.clock.Add(rg.r.cfg.TombstoneTTL)
	if rg.r.Revoked("h") {
		t.Fatal("tombstone outlived its ttl after confirmation")
	}
}

// The bus down, the store up: the delete lands, the event is queued and
// sent once the bus is back.
func TestRevokeSessionBusDownIsQueued(t *testing.T) {
	rg := newRig(t, rigOptions{})
	rg.run(t)
	rg.fs.put("cy", "h")
	rg.bus.down.Store(true)
	if res := rg.r.RevokeSession(context.Background(), "h", "api"); !res.Pending {
		t.Fatalf("result %+v", res)
	}
	if rg.fs.has("h") {
		t.Fatal("store delete did not land")
	}
	rg.bus.down.Store(false)
	rg.r.Trigger("test: bus back")
	waitFor(t, generous, "revocation confirmed", func() bool { return rg.r.Pending() == 0 })
	if evs := rg.bus.events(); len(evs) != 1 || evs[0].Handle != "h" {
		t.Fatalf("events %+v", evs)
	}
}

// A second revocation of a queued session folds into the queued one.
func TestRevokeQueuedSessionAgain(t *testing.T) {
	rg := newRig(t, rigOptions{})
	rg.fs.put("di", "h")
	rg.fs.down.Store(true)
	rg.r.RevokeSession(context.Background(), "h", "api")
	rg.r.RevokeSession(context.Background(), "h", "logout")
	if n := rg.r.Pending(); n != 1 {
		t.Fatalf("%d pending, want 1", n)
	}
	if rg.logs.FilterMessage("revocation queued").FilterField(zapBool("merged", true)).Len() != 1 {
		t.Fatal("the second revocation did not fold in")
	}
	rg.fs.down.Store(false)
	rg.run(t)
	rg.r.Trigger("test")
	waitFor(t, generous, "confirmed", func() bool { return rg.r.Pending() == 0 })
	rg.clock.Add(rg.r.cfg.TombstoneTTL)
	if rg.r.Revoked("h") {
		t.Fatal("a hold leaked: the tombstone never expires")
	}
}

// Issue 9 item 4, at the unit's seams: a user revocation closes exactly the
// sessions the store destroyed, here and (through the event's handles)
// elsewhere; the user's session created meanwhile stays.
func TestRevokeUserClosesOnlyDestroyed(t *testing.T) {
	rg := newRig(t, rigOptions{})
	rg.fs.put("eve", "h1", "h2")
	rg.fs.put("other", "o1")
	for _, h := range []string{"h1", "h2", "new"} {
		rg.conns.open("eve", h, 1, time.Time{})
	}
	rg.conns.open("other", "o1", 1, time.Time{})
	res, err := rg.r.RevokeUser(context.Background(), "eve", "api")
	if err != nil || res != (Result{Sessions: 2, ClosedLocal: 2}) {
		t.Fatalf("result %+v, %v", res, err)
	}
	if rg.conns.code("h1") != connmgr.CodeRevoked || rg.conns.code("h2") != connmgr.CodeRevoked {
		t.Fatal("destroyed sessions not closed with 4500")
	}
	if !rg.conns.isOpen("new") || !rg.conns.isOpen("o1") || rg.r.Revoked("new") {
		t.Fatal("a session the revocation did not destroy was closed or tombstoned")
	}
	evs := rg.bus.events()
	if len(evs) != 1 || evs[0].Kind != pubsub.KindUserRevoked || evs[0].UserID != "eve" || !slices.Equal(evs[0].Handles, []string{"h1", "h2"}) {
		t.Fatalf("events %+v", evs)
	}
}

// A user with more sessions than one event carries is announced in
// several, every handle exactly once.
func TestRevokeUserChunksEvents(t *testing.T) {
	for _, tc := range []struct {
		per, sessions int
		want          []int
	}{
		{per: 0, sessions: 2500, want: []int{1000, 1000, 500}},
		{per: 2, sessions: 5, want: []int{2, 2, 1}},
		{per: 2, sessions: 4, want: []int{2, 2}},
		{per: 2, sessions: 0, want: nil},
	} {
		t.Run(fmt.Sprintf("%d_per_event_%d_sessions", tc.per, tc.sessions), func(t *testing.T) {
			rg := newRig(t, rigOptions{cfg: Config{HandlesPerEvent: tc.per}})
			for i := 0; i < tc.sessions; i++ {
				rg.fs.put("fay", fmt.Sprintf("h%05d", i))
			}
			if res, err := rg.r.RevokeUser(context.Background(), "fay", "api"); err != nil || res.Sessions != tc.sessions {
				t.Fatalf("result %+v, %v", res, err)
			}
			var sizes []int
			seen := map[string]bool{}
			for _, e := range rg.bus.events() {
				sizes = append(sizes, len(e.Handles))
				for _, h := range e.Handles {
					if seen[h] {
						t.Fatalf("handle %s announced twice", h)
					}
					seen[h] = true
				}
			}
			if !slices.Equal(sizes, tc.want) || len(seen) != tc.sessions {
				t.Fatalf("event sizes %v, want %v (%d handles)", sizes, tc.want, len(seen))
			}
		})
	}
}

// The store down: fail closed (every local connection of the user closes),
// queue, and once the store is back destroy and announce.
func TestRevokeUserStoreDownFailsClosed(t *testing.T) {
	rg := newRig(t, rigOptions{})
	rg.run(t)
	rg.fs.put("gil", "h1", "h2")
	rg.conns.open("gil", "h1", 1, time.Time{})
	rg.conns.open("gil", "h2", 2, time.Time{})
	rg.fs.down.Store(true)
	res, err := rg.r.RevokeUser(context.Background(), "gil", "api")
	if err != nil || !res.Pending || res.ClosedLocal != 3 {
		t.Fatalf("result %+v, %v", res, err)
	}
	// Until the store confirms, the user's sessions may still read as
	// valid: handshakes must be refused, and a connection that registered
	// anyway (its store read came first) is closed by the re-check.
	if !rg.r.UserPending("gil") || rg.r.UserPending("someone-else") {
		t.Fatal("UserPending does not report the queued user revocation (alone)")
	}
	rg.conns.open("gil", "h3", 4, time.Time{})
	if !rg.r.CloseIfRevokedMeanwhile("h3", "gil") || rg.conns.code("h3") != connmgr.CodeRevoked {
		t.Fatal("a connection registered during the pending user revocation stayed open")
	}
	rg.fs.down.Store(false)
	// The confirmation is logged right after the queue empties: wait for
	// both.
	waitFor(t, generous, "confirmed", func() bool {
		return rg.r.Pending() == 0 && rg.logs.FilterMessage("revocation confirmed").Len() > 0
	})
	if rg.r.UserPending("gil") {
		t.Fatal("UserPending after the revocation was confirmed")
	}
	if rg.fs.has("h1") || rg.fs.has("h2") {
		t.Fatal("sessions still stored")
	}
	evs := rg.bus.events()
	if len(evs) != 1 || !slices.Equal(evs[0].Handles, []string{"h1", "h2"}) {
		t.Fatalf("events %+v", evs)
	}
	if !rg.r.Revoked("h1") || !rg.r.Revoked("h2") {
		t.Fatal("destroyed handles not tombstoned")
	}
	l := rg.logs.FilterMessage("revocation confirmed").All()
	if len(l) != 1 || l[0].ContextMap()["sessions"] != int64(2) {
		t.Fatalf("confirmed lines %+v", l)
	}
}

// The bus fails after the first of three events: the retry sends the other
// two, not the first again.
func TestRevokeUserResumesPublishing(t *testing.T) {
	bus := &flakyBus{fakeBus: &fakeBus{}, failAfter: 1}
	rg := newRig(t, rigOptions{cfg: Config{HandlesPerEvent: 2}, bus: bus})
	rg.run(t)
	rg.fs.put("hal", "a", "b", "c", "d", "e")
	res, err := rg.r.RevokeUser(context.Background(), "hal", "api")
	if err != nil || !res.Pending || res.Sessions != 5 {
		t.Fatalf("result %+v, %v", res, err)
	}
	bus.heal()
	waitFor(t, generous, "confirmed", func() bool { return rg.r.Pending() == 0 })
	var got [][]string
	for _, e := range bus.events() {
		got = append(got, e.Handles)
	}
	if fmt.Sprint(got) != "[[a b] [c d] [e]]" {
		t.Fatalf("events %v", got)
	}
}

// flakyBus publishes failAfter events, then fails until healed.
type flakyBus struct {
	*fakeBus
	failAfter int
}

func (b *flakyBus) Publish(ctx context.Context, e pubsub.Event) error {
	b.mu.Lock()
	fail := b.failAfter >= 0 && len(b.evs) >= b.failAfter
	b.mu.Unlock()
	if fail {
		return errors.New("fake: bus down")
	}
	return b.fakeBus.Publish(ctx, e)
}

func (b *flakyBus) heal() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failAfter = -1
}

func TestRevokeInvalidUser(t *testing.T) {
	rg := newRig(t, rigOptions{})
	rg.conns.open("", "h", 1, time.Time{})
	if _, err := rg.r.RevokeUser(context.Background(), "", "api"); !errors.Is(err, session.ErrInvalidUser) {
		t.Fatalf("err %v", err)
	}
	if rg.r.Pending() != 0 || !rg.conns.isOpen("h") {
		t.Fatal("an invalid user id was queued or closed something")
	}
}

// Shutting down with revocations still queued says so at ERROR.
func TestAbandonedRevocationsLogged(t *testing.T) {
	rg := newRig(t, rigOptions{})
	rg.fs.put("ida", "h")
	rg.fs.down.Store(true)
	rg.r.RevokeSession(context.Background(), "h", "api")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		rg.r.Run(ctx)
	}()
	cancel()
	<-done
	if l := rg.logs.FilterMessage("revocations abandoned").All(); len(l) != 1 || l[0].Level != zapcore.ErrorLevel ||
		l[0].ContextMap()["pending"] != int64(1) {
		t.Fatalf("abandoned lines %+v", l)
	}
}

// A second revocation of a user whose first is still queued folds into
// the queued one; the sessions the second destroyed must still be
// announced, or their connections on other instances stay open until the
// sweep. The retry cannot find them again: the store no longer has them.
func TestRevokeQueuedUserAgainAnnouncesBoth(t *testing.T) {
	rg := newRig(t, rigOptions{})
	rg.bus.down.Store(true)
	rg.fs.put("ivy", "h1")
	if res, err := rg.r.RevokeUser(context.Background(), "ivy", "api"); err != nil || !res.Pending || res.Sessions != 1 {
		t.Fatalf("first: %+v, %v", res, err)
	}
	rg.fs.put("ivy", "h2")
	if res, err := rg.r.RevokeUser(context.Background(), "ivy", "logout"); err != nil || !res.Pending || res.Sessions != 1 {
		t.Fatalf("second: %+v, %v", res, err)
	}
	if n := rg.r.Pending(); n != 1 {
		t.Fatalf("%d pending, want 1 (folded)", n)
	}
	rg.bus.down.Store(false)
	rg.run(t)
	rg.r.Trigger("test")
	waitFor(t, generous, "confirmed", func() bool { return rg.r.Pending() == 0 })
	announced := map[string]bool{}
	for _, e := range rg.bus.events() {
		for _, h := range e.Handles {
			announced[h] = true
		}
	}
	if !announced["h1"] || !announced["h2"] {
		t.Fatalf("announced %v, want h1 and h2", announced)
	}
}
