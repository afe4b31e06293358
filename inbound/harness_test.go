package inbound

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/internal/fakeclock"
	"github.com/sessiongate/sessiongate/internal/redistest"
)

// waitFor is the generous bound of every "eventually" in these tests.
const waitFor = 20 * time.Second

// eventually fails the test unless cond becomes true within waitFor.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// queue is everything both queues offer.
type queue interface {
	Producer
	Consumer
	Admin
}

// harness is one queue under test and the levers a test pulls on it.
type harness struct {
	q queue
	// expire makes the visibility timeout of every message delivered so
	// far pass: the fake clock moves (memory), or the test waits until
	// Redis reports them idle that long (Redis, with a short timeout).
	expire func(t *testing.T)
	// clock is the fake clock of a memory queue; nil on Redis, whose
	// idle times a test cannot move.
	clock *fakeclock.Clock
	// rdb, lose: the client of a Redis queue, and a FLUSHALL.
	rdb  redis.UniversalClient
	lose func(t *testing.T)
}

// impl builds a harness for a configuration.
type impl struct {
	name string
	new  func(t *testing.T, cfg Config) *harness
}

// redisVisibility is the visibility timeout of queues on a real Redis,
// whose clock a test cannot move: short, so expire waits little.
const redisVisibility = 150 * time.Millisecond

// impls are the queues the contract runs on: memory, a real
// redis-server and a one-node Redis Cluster.
func impls(t *testing.T) []impl {
	outer := t
	var single *redistest.Server
	var cluster *redistest.Cluster
	var prefixes atomic.Int64
	prefix := func(c string) string { return c + strconv.FormatInt(prefixes.Add(1), 10) + ":" }
	return []impl{
		{"memory", newMemoryHarness},
		{"redis", func(t *testing.T, cfg Config) *harness {
			if single == nil {
				single = redistest.Start(outer)
			}
			cfg.Prefix = prefix("t")
			return newRedisHarness(t, newClient(t, single.Addr()), cfg)
		}},
		{"redis-cluster", func(t *testing.T, cfg Config) *harness {
			if cluster == nil {
				cluster = startCluster(outer)
			}
			cfg.Prefix = prefix("c")
			rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{cluster.Addr()}, DialTimeout: time.Second})
			t.Cleanup(func() { _ = rdb.Close() })
			return newRedisHarness(t, rdb, cfg)
		}},
	}
}

func newMemoryHarness(t *testing.T, cfg Config) *harness {
	clock := fakeclock.New(time.Unix(1_700_000_000, 0))
	q := NewMemory(cfg, MemoryOptions{Now: clock.Now})
	return &harness{q: q, clock: clock,
		expire: func(*testing.T) { clock.Add(q.Config().VisibilityTimeout) }}
}

func newClient(t testing.TB, addr string) redis.UniversalClient {
	t.Helper()
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{addr}, DialTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// newRedisHarness is the harness of a Redis queue through rdb. Unless
// the test asks for one, the visibility timeout is redisVisibility.
func newRedisHarness(t *testing.T, rdb redis.UniversalClient, cfg Config) *harness {
	if cfg.VisibilityTimeout == 0 {
		cfg.VisibilityTimeout = redisVisibility
	}
	q := NewRedis(rdb, cfg)
	if err := q.EnsureGroup(context.Background()); err != nil {
		t.Fatal(err)
	}
	h := &harness{q: q, rdb: rdb}
	h.expire = func(t *testing.T) {
		t.Helper()
		c := q.Config()
		eventually(t, "every pending message to pass its visibility timeout", func() bool {
			for p := range c.Partitions {
				key := partitionKey(c.Prefix, p)
				all, err := rdb.XPending(context.Background(), key, c.Group).Result()
				if err != nil {
					t.Fatal(err)
				}
				idle, err := rdb.XPendingExt(context.Background(), &redis.XPendingExtArgs{Stream: key, Group: c.Group,
					Idle: c.VisibilityTimeout, Start: "-", End: "+", Count: all.Count + 1}).Result()
				if err != nil {
					t.Fatal(err)
				}
				if int64(len(idle)) != all.Count {
					return false
				}
			}
			return true
		})
	}
	h.lose = func(t *testing.T) {
		t.Helper()
		var err error
		if cc, ok := rdb.(*redis.ClusterClient); ok {
			err = cc.ForEachMaster(context.Background(), func(ctx context.Context, c *redis.Client) error {
				return c.FlushAll(ctx).Err()
			})
		} else {
			err = rdb.FlushAll(context.Background()).Err()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// startCluster starts a one-node Redis Cluster (redistest.StartCluster)
// that serves every slot, where a command or script whose keys span two
// slots fails with CROSSSLOT.
func startCluster(t *testing.T) *redistest.Cluster {
	t.Helper()
	return redistest.StartCluster(t, redistest.ClusterOptions{Masters: 1})
}
