package history

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// waitFor is the generous bound of every "eventually" in these tests.
const waitFor = 15 * time.Second

// eventually fails the test unless cond becomes true within waitFor.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// store is what both histories offer; the contract suite drives it.
type store interface {
	Reader
	Append(ctx context.Context, stream string, data []byte, channel string) (Position, error)
	Position(ctx context.Context, stream string) (Position, error)
}

// harness is one history under test and the levers a test pulls on it.
type harness struct {
	h store
	// lose drops every stream's history at once (FLUSHALL, a restart).
	lose func(t *testing.T)
	// expire makes stream's history expire as its TTL would, after
	// checking the TTL is set.
	expire func(t *testing.T, stream string)
	// advance moves the clock the TTL is measured with; nil on a real
	// redis-server, whose clock a test cannot move.
	advance func(d time.Duration)
	// subscribe returns the live messages published on channel from now on.
	subscribe func(t *testing.T, channel string) <-chan []byte
	// exactTrim is true when the history keeps exactly Size events (the
	// memory ring); Redis's MAXLEN ~ keeps at least Size.
	exactTrim bool
	// redis and prefix are the client and key prefix of a Redis history.
	redis  redis.UniversalClient
	prefix string
}

// impl builds a harness for a configuration.
type impl struct {
	name string
	new  func(t *testing.T, cfg Config) *harness
}

// impls are the three histories the contract runs on.
func impls(t *testing.T) []impl {
	var real *redistest.Server
	outer := t
	realServer := func() *redistest.Server {
		if real == nil { // started once, stopped when the calling test ends
			real = redistest.Start(outer)
		}
		return real
	}
	var cluster *redistest.Cluster
	clusterServer := func() *redistest.Cluster {
		if cluster == nil {
			cluster = startCluster(outer)
		}
		return cluster
	}
	var prefixes atomic.Int64
	return []impl{
		{"memory", newMemoryHarness},
		{"miniredis", func(t *testing.T, cfg Config) *harness {
			mr := miniredis.RunT(t)
			h := newRedisHarness(t, newClient(t, mr.Addr()), cfg)
			h.lose = func(t *testing.T) { mr.FlushAll() }
			h.advance = mr.FastForward
			h.expire = func(t *testing.T, stream string) {
				t.Helper()
				checkTTL(t, h, stream, cfg.withDefaults().TTL)
				mr.FastForward(cfg.withDefaults().TTL)
			}
			return h
		}},
		{"redis-cluster", func(t *testing.T, cfg Config) *harness {
			srv := clusterServer()
			cfg.Prefix = "c" + strconv.FormatInt(prefixes.Add(1), 10) + ":"
			rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr()}, DialTimeout: time.Second})
			t.Cleanup(func() { _ = rdb.Close() })
			return newRedisHarness(t, rdb, cfg)
		}},
		{"redis", func(t *testing.T, cfg Config) *harness {
			srv := realServer()
			// One server for every subtest, a fresh prefix for each.
			cfg.Prefix = "t" + strconv.FormatInt(prefixes.Add(1), 10) + ":"
			return newRedisHarness(t, newClient(t, srv.Addr()), cfg)
		}},
	}
}

func newMemoryHarness(t *testing.T, cfg Config) *harness {
	var (
		mu   sync.Mutex
		subs = map[string][]chan []byte{}
		now  = time.Unix(1_700_000_000, 0)
	)
	m := NewMemory(cfg, MemoryOptions{
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		Publish: func(channel string, msg []byte) {
			mu.Lock()
			defer mu.Unlock()
			for _, c := range subs[channel] {
				c <- msg
			}
		},
	})
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	return &harness{
		h:       m,
		lose:    func(*testing.T) { m.Forget() },
		advance: advance,
		expire:  func(*testing.T, string) { advance(cfg.withDefaults().TTL) },
		subscribe: func(t *testing.T, channel string) <-chan []byte {
			c := make(chan []byte, 100_000)
			mu.Lock()
			subs[channel] = append(subs[channel], c)
			mu.Unlock()
			return c
		},
		exactTrim: true,
	}
}

func newClient(t testing.TB, addr string) redis.UniversalClient {
	t.Helper()
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{addr}, DialTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// newRedisHarness is the harness of a Redis history through rdb; on a
// real redis-server expiry is the server's own, started by PEXPIRE.
func newRedisHarness(t *testing.T, rdb redis.UniversalClient, cfg Config) *harness {
	h := &harness{h: NewRedis(rdb, cfg)}
	h.lose = func(t *testing.T) {
		if err := rdb.FlushAll(context.Background()).Err(); err != nil {
			t.Fatal(err)
		}
	}
	h.expire = func(t *testing.T, stream string) {
		t.Helper()
		checkTTL(t, h, stream, cfg.withDefaults().TTL)
		ctx := context.Background()
		keys := []string{streamKey(cfg.Prefix, stream), metaKey(cfg.Prefix, stream)}
		for _, k := range keys {
			if err := rdb.PExpire(ctx, k, time.Millisecond).Err(); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, "the keys to expire", func() bool {
			return rdb.Exists(ctx, keys[0]).Val()+rdb.Exists(ctx, keys[1]).Val() == 0
		})
	}
	h.subscribe = func(t *testing.T, channel string) <-chan []byte {
		t.Helper()
		ps := rdb.Subscribe(context.Background(), channel)
		if _, err := ps.Receive(context.Background()); err != nil { // confirmation
			t.Fatal(err)
		}
		out := make(chan []byte, 100_000)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for m := range ps.Channel(redis.WithChannelSize(100_000)) {
				out <- []byte(m.Payload)
			}
		}()
		t.Cleanup(func() { _ = ps.Close(); <-done })
		return out
	}
	h.redis = rdb
	h.prefix = cfg.Prefix
	return h
}

// checkTTL fails unless both keys of stream have a TTL in (0, ttl].
func checkTTL(t *testing.T, h *harness, stream string, ttl time.Duration) {
	t.Helper()
	for _, k := range []string{streamKey(h.prefix, stream), metaKey(h.prefix, stream)} {
		got := h.redis.PTTL(context.Background(), k).Val()
		if got <= 0 || got > ttl {
			t.Fatalf("PTTL %s = %v, want in (0, %v]", k, got, ttl)
		}
	}
}

// startCluster starts a one-node Redis Cluster (redistest.StartCluster)
// that serves every slot, where a command or script whose keys span two
// slots fails with CROSSSLOT.
func startCluster(t *testing.T) *redistest.Cluster {
	t.Helper()
	return redistest.StartCluster(t, redistest.ClusterOptions{Masters: 1})
}

// startRedis starts a real redis-server for one test.
func startRedis(t *testing.T) *redistest.Server {
	t.Helper()
	return redistest.Start(t)
}

// startRedisB starts a real redis-server for one benchmark.
func startRedisB(b *testing.B) *redistest.Server {
	b.Helper()
	return redistest.Start(b)
}
