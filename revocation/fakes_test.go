package revocation

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sessiongate/sessiongate/connmgr"
	"github.com/sessiongate/sessiongate/internal/fakeclock"
	"github.com/sessiongate/sessiongate/pubsub"
	"github.com/sessiongate/sessiongate/session"
)

var errDown = errors.New("fake: store down")

// generous bounds every wait for something that must happen: a hang
// detector, long enough that a loaded machine (-race, stress-ng) never
// reaches it.
const generous = 30 * time.Second

// fakeClock is a clock the test moves by hand.
type fakeClock = fakeclock.Clock

func newFakeClock() *fakeClock { return fakeclock.New(time.Unix(1_700_000_000, 0)) }

// fakeStore is a session store reduced to what the revoker sees: handle ->
// user. down makes every call fail.
type fakeStore struct {
	down atomic.Bool
	mu   sync.Mutex
	s    map[string]string // handle -> user id
	// unindexed are sessions their user's index lost: DestroyUser misses
	// them, as the real store would.
	unindexed map[string]bool
	gen       string
	// touched records the touch flag of each Exists call.
	touched []bool
	calls   map[string]int
}

func newFakeStore() *fakeStore {
	return &fakeStore{s: make(map[string]string), unindexed: make(map[string]bool), gen: "gen-1", calls: make(map[string]int)}
}

func (f *fakeStore) put(user string, handles ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range handles {
		f.s[h] = user
	}
}

// unindex drops h from its user's index, as a failover can.
func (f *fakeStore) unindex(h string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unindexed[h] = true
}

func (f *fakeStore) has(h string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.s[h]
	return ok
}

func (f *fakeStore) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

func (f *fakeStore) enter(op string) error {
	f.mu.Lock()
	f.calls[op]++
	f.mu.Unlock()
	if f.down.Load() {
		return errDown
	}
	return nil
}

func (f *fakeStore) Destroy(_ context.Context, h string) (bool, error) {
	if err := f.enter("destroy"); err != nil {
		return false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.s[h]
	delete(f.s, h)
	return ok, nil
}

func (f *fakeStore) DestroyUser(_ context.Context, u string) ([]string, error) {
	if u == "" {
		return nil, session.ErrInvalidUser
	}
	if err := f.enter("destroy_user"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for h, owner := range f.s {
		if owner == u && !f.unindexed[h] {
			out = append(out, h)
			delete(f.s, h)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (f *fakeStore) Exists(_ context.Context, hs []string, touch bool) ([]bool, error) {
	if err := f.enter("exists"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.touched = append(f.touched, touch)
	out := make([]bool, len(hs))
	for i, h := range hs {
		_, out[i] = f.s[h]
	}
	return out, nil
}

func (f *fakeStore) Indexed(_ context.Context, refs []session.IndexRef) ([]bool, error) {
	if err := f.enter("indexed"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]bool, len(refs))
	for i, r := range refs {
		owner, ok := f.s[r.Handle]
		out[i] = ok && owner == r.UserID && !f.unindexed[r.Handle]
	}
	return out, nil
}

func (f *fakeStore) Generation(context.Context) (string, error) {
	if err := f.enter("generation"); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gen, nil
}

// reset loses every session and the generation, as a Redis restart
// without persistence would.
func (f *fakeStore) reset(gen string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.s)
	f.gen = gen
}

// fakeBus records what is published; down makes Publish fail.
type fakeBus struct {
	down atomic.Bool
	mu   sync.Mutex
	evs  []pubsub.Event
}

func (b *fakeBus) Publish(_ context.Context, e pubsub.Event) error {
	if b.down.Load() {
		return errors.New("fake: bus down")
	}
	if _, err := e.Encode(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.evs = append(b.evs, e)
	return nil
}

func (b *fakeBus) events() []pubsub.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.evs)
}

// fakeConns is a connection registry: each session has a user, a number of
// connections and an expiry. Closing removes them and records the code.
type fakeConns struct {
	mu     sync.Mutex
	s      map[string]*fakeSession
	closed map[string]connmgr.CloseCode
}

type fakeSession struct {
	user    string
	n       int
	expires time.Time
}

func newFakeConns() *fakeConns {
	return &fakeConns{s: make(map[string]*fakeSession), closed: make(map[string]connmgr.CloseCode)}
}

func (c *fakeConns) open(user, handle string, n int, expires time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.s[handle] = &fakeSession{user: user, n: n, expires: expires}
}

// code returns the close code of handle's connections, 0 if still open.
func (c *fakeConns) code(handle string) connmgr.CloseCode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed[handle]
}

func (c *fakeConns) isOpen(handle string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.s[handle]
	return ok
}

func (c *fakeConns) CloseSession(h string, code connmgr.CloseCode) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.s[h]
	if !ok {
		return 0
	}
	delete(c.s, h)
	c.closed[h] = code
	return s.n
}

func (c *fakeConns) CloseUser(u string, code connmgr.CloseCode) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for h, s := range c.s {
		if s.user == u {
			delete(c.s, h)
			c.closed[h] = code
			n += s.n
		}
	}
	return n
}

func (c *fakeConns) Sessions() []connmgr.SessionRef {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []connmgr.SessionRef
	for h, s := range c.s {
		out = append(out, connmgr.SessionRef{Handle: h, Conns: s.n, ExpiresAt: s.expires})
	}
	return out
}

// rig is a Revoker on fakes.
type rig struct {
	r     *Revoker
	store Store
	fs    *fakeStore // nil when store is not a fakeStore
	bus   *fakeBus
	conns *fakeConns
	clock *fakeClock
	logs  *observer.ObservedLogs
	reg   *prometheus.Registry
}

type rigOptions struct {
	cfg   Config
	store Store // default: a fakeStore
	bus   Publisher
	// forget is Deps.Forget.
	forget func(handles []string, all bool)
}

func newRig(t *testing.T, o rigOptions) *rig {
	t.Helper()
	if o.cfg.InstanceID == "" {
		o.cfg.InstanceID = "self"
	}
	if o.cfg.RetryMin == 0 {
		// Retries in tests: soon, and still spaced by backoff.
		o.cfg.RetryMin, o.cfg.RetryMax = 5*time.Millisecond, 50*time.Millisecond
	}
	rg := &rig{bus: &fakeBus{}, conns: newFakeConns(), clock: newFakeClock(), reg: prometheus.NewRegistry()}
	rg.store = o.store
	if rg.store == nil {
		rg.fs = newFakeStore()
		rg.store = rg.fs
	}
	var bus Publisher = rg.bus
	if o.bus != nil {
		bus = o.bus
	}
	core, logs := observer.New(zapcore.DebugLevel)
	rg.logs = logs
	r, err := New(o.cfg, Deps{Store: rg.store, Bus: bus, Conns: rg.conns, Now: rg.clock.Now, Metrics: rg.reg,
		Log: zap.New(zapcore.NewTee(core, zaptest.NewLogger(t).Core())), Forget: o.forget})
	if err != nil {
		t.Fatal(err)
	}
	rg.r = r
	return rg
}

// run runs the Revoker's loops until the test ends.
func (rg *rig) run(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		rg.r.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// metric returns the value of a counter or gauge (the sum over labels).
func (rg *rig) metric(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := rg.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	v := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return v
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func zapBool(key string, v bool) zap.Field { return zap.Bool(key, v) }

// newRedisStore is a session.RedisStore on rdb with the tests' keys.
func newRedisStore(t *testing.T, rdb redis.UniversalClient) *session.RedisStore {
	t.Helper()
	codec, err := session.NewCodec([]byte("0123456789abcdef0123456789abcdef-revocation"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := session.NewKeyring([][]byte{[]byte("kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk")})
	if err != nil {
		t.Fatal(err)
	}
	st, err := session.NewRedisStore(rdb, codec, keys, session.Options{Prefix: "rv:"})
	if err != nil {
		t.Fatal(err)
	}
	return st
}
