package pubsub

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/internal/redistest"
	"github.com/sessiongate/sessiongate/internal/shardkey"
)

// These tests pin what plain go-redis (v9.23.0) does with SSUBSCRIBE on a
// real cluster, the behaviour ShardedBus works around: it never puts two
// shard channels on one connection, treats every error reply and every
// "sunsubscribe" as a lost subscription, and opens a fresh connection
// after the cluster client reloaded its slot map.

// twoShardsOnTwoMasters returns two shard channels served by different
// masters.
func twoShardsOnTwoMasters(t *testing.T, c *redistest.Cluster) (string, string) {
	t.Helper()
	a := shardkey.Channel("t:events", 0)
	for n := 1; n < 64; n++ {
		if b := shardkey.Channel("t:events", n); c.MasterOfKey(b) != c.MasterOfKey(a) {
			return a, b
		}
	}
	t.Fatal("every shard channel on one master")
	return "", ""
}

// receiveWithin is one Receive bounded by d.
func receiveWithin(ps *redis.PubSub, d time.Duration) (any, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return ps.Receive(ctx)
}

// go-redis#3133: SSubscribe with several channels sends them all to the
// node of the first one. Redis refuses channels of several slots in one
// SSUBSCRIBE (CROSSSLOT), so the subscription gets none of them. Still
// the case in v9.23.0.
func TestGoRedisMultiChannelSSubscribe(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3})
	cc := newClusterClient(t, c, 0)
	a, b := twoShardsOnTwoMasters(t, c)
	ps := cc.SSubscribe(context.Background(), a, b)
	defer ps.Close()
	_, err := receiveWithin(ps, waitFor)
	if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("SSubscribe(%s, %s) first reply: %v; want CROSSSLOT (go-redis#3133)", a, b, err)
	}
}

// go-redis#3099: a second SSubscribe on a PubSub goes to the connection
// of the first channel's node; a channel of another node gets MOVED, and
// go-redis keeps the connection as it is. Still the case in v9.23.0.
func TestGoRedisSSubscribeLaterChannelMoved(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3})
	cc := newClusterClient(t, c, 0)
	a, b := twoShardsOnTwoMasters(t, c)
	ps := cc.SSubscribe(context.Background(), a)
	defer ps.Close()
	if m, err := receiveWithin(ps, waitFor); err != nil {
		t.Fatalf("first SSubscribe: %v", err)
	} else if s, ok := m.(*redis.Subscription); !ok || s.Kind != "ssubscribe" {
		t.Fatalf("first reply %#v", m)
	}
	if err := ps.SSubscribe(context.Background(), b); err != nil {
		t.Fatalf("second SSubscribe: %v", err)
	}
	_, err := receiveWithin(ps, waitFor)
	if err == nil || !strings.HasPrefix(err.Error(), "MOVED") {
		t.Fatalf("second SSubscribe reply: %v; want MOVED (go-redis#3099)", err)
	}
}

// go-redis#3806: after its connection is cut, a sharded PubSub used to
// reconnect to a random node (where SSUBSCRIBE gets MOVED). Fixed in
// v9.23.0: the reconnect is routed by the shard channel's slot, and the
// subscription delivers again. (The bus does not rely on it: it opens a
// fresh PubSub itself; TestShardedBusSurvivesKilledConnections.)
func TestGoRedisSSubscribeReconnectFixed(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3})
	cc := newClusterClient(t, c, 0)
	ch := shardkey.Channel("t:events", 0)
	ps := cc.SSubscribe(context.Background(), ch)
	defer ps.Close()
	if _, err := receiveWithin(ps, waitFor); err != nil {
		t.Fatal(err)
	}
	if r, err := c.MasterOfKey(ch).Do("CLIENT KILL TYPE pubsub"); err != nil || strings.HasPrefix(r, "-") {
		t.Fatalf("CLIENT KILL: %q, %v", r, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for ctx.Err() == nil {
			cc.SPublish(ctx, ch, "x")
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	defer func() { cancel(); wg.Wait() }()
	deadline := time.Now().Add(waitFor)
	for {
		m, err := receiveWithin(ps, time.Second)
		if _, ok := m.(*redis.Message); ok && err == nil {
			return
		}
		if err != nil && strings.HasPrefix(err.Error(), "MOVED") {
			t.Fatalf("reconnected to the wrong node: %v (go-redis#3806 is back)", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message after the reconnect; last %v %v", m, err)
		}
	}
}

// When a shard channel's slot leaves its master (a migration, a failover)
// the server sends "sunsubscribe" and plain go-redis leaves it at that: the
// PubSub stays open, subscribed to nothing. The bus treats it as a lost
// subscription (TestShardedBusSurvivesSlotMigration).
func TestGoRedisSSubscribeSlotMovedUnsubscribes(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3})
	cc := newClusterClient(t, c, 0)
	ch := shardkey.Channel("t:events", 0)
	ps := cc.SSubscribe(context.Background(), ch)
	defer ps.Close()
	if _, err := receiveWithin(ps, waitFor); err != nil {
		t.Fatal(err)
	}
	from := c.MasterOfKey(ch)
	for _, m := range c.Masters() {
		if m != from {
			c.MoveSlot(redistest.Slot(ch), m)
			break
		}
	}
	m, err := receiveWithin(ps, waitFor)
	if s, ok := m.(*redis.Subscription); err != nil || !ok || s.Kind != "sunsubscribe" || s.Count != 0 {
		t.Fatalf("after the migration: %#v, %v; want sunsubscribe with no channel left", m, err)
	}
}
