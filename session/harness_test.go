package session

import (
	"context"
	"crypto/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/internal/fakeclock"
	"github.com/sessiongate/sessiongate/internal/redistest"
)

// testSecret and testKey are fixed test material, never used outside tests;
// testExpiry is an absolute expiry for envelope tests.
var (
	testSecret = []byte("0123456789abcdef0123456789abcdef-test-secret")
	testKey    = []byte("kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk")
	testExpiry = time.Date(2030, 1, 2, 3, 4, 5, 6789, time.UTC)
)

// sealV1 seals a version 1 envelope (no expiry in the header), as this
// package did before version 2.
func sealV1(t testing.TB, k *Keyring, redisKey string, pt []byte) []byte {
	t.Helper()
	blob := make([]byte, v1HeaderLen+nonceLen)
	blob[0] = envelopeV1
	copy(blob[1:v1HeaderLen], k.primary.id[:])
	if _, err := rand.Read(blob[v1HeaderLen:]); err != nil {
		t.Fatal(err)
	}
	return k.primary.aead.Seal(blob, blob[v1HeaderLen:], pt, aad(blob[:v1HeaderLen], redisKey))
}

func newTestCodec(t testing.TB) *Codec {
	t.Helper()
	c, err := NewCodec(testSecret)
	if err != nil {
		t.Fatalf("NewCodec: %v", err)
	}
	return c
}

func newTestKeyring(t testing.TB, keys ...[]byte) *Keyring {
	t.Helper()
	if len(keys) == 0 {
		keys = [][]byte{testKey}
	}
	kr, err := NewKeyring(keys)
	if err != nil {
		t.Fatalf("NewKeyring: %v", err)
	}
	return kr
}

// fakeClock is a clock the test moves by hand.
type fakeClock = fakeclock.Clock

func newFakeClock() *fakeClock { return fakeclock.New(time.Now()) }

// cmdLog is a go-redis hook that records the name of every command sent.
type cmdLog struct {
	mu   sync.Mutex
	cmds []string
}

func (l *cmdLog) DialHook(next redis.DialHook) redis.DialHook { return next }

func (l *cmdLog) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		l.add(cmd)
		return next(ctx, cmd)
	}
}

func (l *cmdLog) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			l.add(c)
		}
		return next(ctx, cmds)
	}
}

func (l *cmdLog) add(c redis.Cmder) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cmds = append(l.cmds, strings.ToLower(c.Name()))
}

// since returns the commands recorded after mark (a previous len).
func (l *cmdLog) since(mark int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.cmds[mark:]...)
}

func (l *cmdLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.cmds)
}

// harness is one backend under the contract suite.
type harness struct {
	store Store
	codec *Codec
	clock *fakeClock
	opts  Options
	// wait lets d pass for idle TTLs, on the backend's TTL clock and the
	// store's clock alike.
	wait func(d time.Duration)
	// ttl is a session's remaining idle TTL; <= 0 when it is gone.
	ttl func(t *testing.T, handle string) time.Duration
	// setTTL sets a session's remaining idle TTL behind the store's back.
	setTTL func(t *testing.T, handle string, d time.Duration)
	// dropKey deletes a session behind the store's back, leaving its index
	// entry dangling.
	dropKey func(t *testing.T, handle string)
	// members lists a user's index.
	members func(t *testing.T, userID string) []string
	// unindex drops a handle from its user's index behind the store's
	// back, as a failover that lost the index write would.
	unindex func(t *testing.T, userID, handle string)
	// rdb and cmds are nil for the memory backend.
	rdb  redis.UniversalClient
	cmds *cmdLog
}

type harnessFactory func(t *testing.T, opts Options) *harness

func memoryHarness(t *testing.T, opts Options) *harness {
	clock := newFakeClock()
	opts.Now = clock.Now
	codec := newTestCodec(t)
	m := NewMemoryStore(codec, opts)
	return &harness{
		store: m, codec: codec, clock: clock, opts: m.opts,
		wait: clock.Add,
		ttl: func(t *testing.T, h string) time.Duration {
			m.mu.Lock()
			defer m.mu.Unlock()
			e := m.liveLocked(h, clock.Now())
			if e == nil {
				return -2
			}
			return e.deadline.Sub(clock.Now())
		},
		setTTL: func(t *testing.T, h string, d time.Duration) {
			m.mu.Lock()
			defer m.mu.Unlock()
			e := m.sessions[h]
			if e == nil {
				t.Fatalf("setTTL: no session %s", h)
			}
			e.deadline = clock.Now().Add(d)
		},
		dropKey: func(t *testing.T, h string) {
			m.mu.Lock()
			defer m.mu.Unlock()
			delete(m.sessions, h)
		},
		members: func(t *testing.T, u string) []string {
			m.mu.Lock()
			defer m.mu.Unlock()
			var out []string
			for h := range m.users[u] {
				out = append(out, h)
			}
			return out
		},
		unindex: func(t *testing.T, u, h string) {
			m.mu.Lock()
			defer m.mu.Unlock()
			delete(m.users[u], h)
		},
	}
}

// redisHarness builds a RedisStore on rdb; wait moves the TTL clock.
func redisHarness(t *testing.T, rdb redis.UniversalClient, opts Options, wait func(time.Duration)) *harness {
	t.Helper()
	ctx := context.Background()
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatalf("FLUSHALL: %v", err)
	}
	log := &cmdLog{}
	rdb.AddHook(log)
	clock := newFakeClock()
	opts.Now = clock.Now
	codec := newTestCodec(t)
	r, err := NewRedisStore(rdb, codec, newTestKeyring(t), opts)
	if err != nil {
		t.Fatalf("NewRedisStore: %v", err)
	}
	return &harness{
		store: r, codec: codec, clock: clock, opts: r.opts, rdb: rdb, cmds: log,
		wait: func(d time.Duration) { wait(d); clock.Add(d) },
		ttl: func(t *testing.T, h string) time.Duration {
			d, err := rdb.PTTL(ctx, r.sessionKey(h)).Result()
			if err != nil {
				t.Fatalf("PTTL: %v", err)
			}
			return d
		},
		setTTL: func(t *testing.T, h string, d time.Duration) {
			ok, err := rdb.PExpire(ctx, r.sessionKey(h), d).Result()
			if err != nil || !ok {
				t.Fatalf("PEXPIRE %s: %v %v", h, ok, err)
			}
		},
		dropKey: func(t *testing.T, h string) {
			if err := rdb.Del(ctx, r.sessionKey(h)).Err(); err != nil {
				t.Fatalf("DEL: %v", err)
			}
		},
		members: func(t *testing.T, u string) []string {
			ms, err := rdb.SMembers(ctx, r.userKey(u)).Result()
			if err != nil {
				t.Fatalf("SMEMBERS: %v", err)
			}
			return ms
		},
		unindex: func(t *testing.T, u, h string) {
			if err := rdb.SRem(ctx, r.userKey(u), h).Err(); err != nil {
				t.Fatalf("SREM: %v", err)
			}
		},
	}
}

func miniredisHarness(t *testing.T, opts Options) *harness {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	return redisHarness(t, rdb, opts, mr.FastForward)
}

// realRedisFactory shares one redis-server across the suite; each harness
// flushes it first (subtests run one at a time).
func realRedisFactory(srv *redistest.Server) harnessFactory {
	return func(t *testing.T, opts Options) *harness {
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		t.Cleanup(func() { _ = rdb.Close() })
		// Its own client: the store's command log must not see the clock.
		clock := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		t.Cleanup(func() { _ = clock.Close() })
		return redisHarness(t, rdb, opts, func(d time.Duration) { shiftTTLs(t, clock, d) })
	}
}

// realClusterFactory shares one Redis Cluster across the suite; each
// harness flushes every master first (subtests run one at a time).
func realClusterFactory(c *redistest.Cluster) harnessFactory {
	return func(t *testing.T, opts Options) *harness {
		newClient := func() *redis.ClusterClient {
			rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), DialTimeout: 5 * time.Second})
			t.Cleanup(func() { _ = rdb.Close() })
			return rdb
		}
		rdb := newClient()
		// One plain client per master, for the flush and the TTL clock:
		// its own connections, so the store's command log does not see them.
		var masters []*redis.Client
		for _, m := range c.Masters() {
			mc := redis.NewClient(&redis.Options{Addr: m.Addr()})
			t.Cleanup(func() { _ = mc.Close() })
			if err := mc.FlushAll(context.Background()).Err(); err != nil {
				t.Fatalf("FLUSHALL on %s: %v", m.Addr(), err)
			}
			masters = append(masters, mc)
		}
		return redisHarness(t, rdb, opts, func(d time.Duration) {
			for _, mc := range masters {
				shiftTTLs(t, mc, d)
			}
		})
	}
}

// shiftTTLs is a real redis-server's TTL clock moved by d without sleeping:
// every key with a TTL loses d of it, and a key whose TTL runs out is
// deleted, as Redis would expire it. Sleeping instead would let the load
// of the machine add to d and expire keys the test expects alive.
func shiftTTLs(t *testing.T, rdb *redis.Client, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result() // the harness flushed the server: only its keys
	if err != nil {
		t.Fatalf("KEYS: %v", err)
	}
	for _, k := range keys {
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatalf("PTTL %s: %v", k, err)
		}
		switch {
		case ttl < 0: // no TTL (-1) or already gone (-2)
		case ttl <= d:
			err = rdb.Del(ctx, k).Err()
		default:
			err = rdb.PExpire(ctx, k, ttl-d).Err()
		}
		if err != nil {
			t.Fatalf("shift TTL of %s: %v", k, err)
		}
	}
}
