package pubsub

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/sessiongate/sessiongate/internal/redistest"
	"github.com/sessiongate/sessiongate/internal/shardkey"
)

// faultWait bounds the recovery after a cluster fault: a failover takes
// cluster-node-timeout and an election, then the bus backs off and
// resubscribes; far beyond what a loaded machine needs.
const faultWait = 90 * time.Second

// testShards is the number of shard channels in these tests: with the
// channel "t:events", shards 0-3 are served by all three masters.
const testShards = 4

// startShardCluster starts 3 masters with one replica each and a short
// cluster-node-timeout.
func startShardCluster(t *testing.T) *redistest.Cluster {
	t.Helper()
	return redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3, Replicas: 1, NodeTimeout: 1500 * time.Millisecond})
}

// newClusterClient is a cluster client on c's nodes, seeded in the order
// given by rotate, closed when the test ends.
func newClusterClient(t testing.TB, c *redistest.Cluster, rotate int) *redis.ClusterClient {
	t.Helper()
	addrs := c.Addrs()
	rotate %= len(addrs)
	addrs = append(addrs[rotate:], addrs[:rotate]...)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, DialTimeout: time.Second,
		ContextTimeoutEnabled: true, MaxRetries: 1})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// newShardedBusT is a sharded bus on its own cluster client, with short
// health and liveness intervals.
func newShardedBusT(t *testing.T, c *redistest.Cluster, rotate int) *ShardedBus {
	t.Helper()
	return NewShardedBus(newClusterClient(t, c, rotate), ShardedConfig{
		RedisConfig:      RedisConfig{Channel: "t:events", PingInterval: 500 * time.Millisecond},
		Shards:           testShards,
		LivenessInterval: 250 * time.Millisecond,
		LivenessTimeout:  2 * time.Second,
	}, zaptest.NewLogger(t))
}

// userMsg is a message for user carrying n.
func userMsg(user string, n int) Event {
	return Event{Kind: KindMessage, ID: NewEventID(), Origin: "test", Target: &Target{UserID: user},
		Name: "n", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))}
}

// userOnShard returns a user id whose events go on shard n.
func userOnShard(n int) string {
	for i := 0; ; i++ {
		if u := fmt.Sprintf("user%d", i); shardkey.Of(u, testShards) == n {
			return u
		}
	}
}

// waitLive waits until every shard of every bus is live.
func waitLive(t *testing.T, what string, buses ...*ShardedBus) {
	t.Helper()
	deadline := time.Now().Add(faultWait)
	for {
		all := true
		for _, b := range buses {
			all = all && b.Live()
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			for _, b := range buses {
				t.Logf("shards: %+v", b.Shards())
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Events for users reach every instance over the shard channels, each
// publisher's events of one user in order, broadcasts over the classic
// channel; each shard channel has exactly one subscription per instance,
// on the master serving its slot (PUBSUB SHARDNUMSUB), whatever the seed
// node: none of go-redis's SSubscribe defects applies.
func TestShardedBusDelivers(t *testing.T) {
	c := startShardCluster(t)
	a, b := newShardedBusT(t, c, 0), newShardedBusT(t, c, 3)
	ra, rb := startRecorded(t, a), startRecorded(t, b)
	waitLive(t, "every shard live", a, b)

	for n := range testShards {
		ch := shardkey.Channel("t:events", n)
		owner := redis.NewClient(&redis.Options{Addr: c.MasterOfKey(ch).Addr()})
		got, err := owner.PubSubShardNumSub(context.Background(), ch).Result()
		_ = owner.Close()
		if err != nil || got[ch] != 2 {
			t.Fatalf("SHARDNUMSUB %s on its master = %v, %v; want 2", ch, got, err)
		}
	}

	users := make([]string, testShards)
	for n := range users {
		users[n] = userOnShard(n)
	}
	const count = 200
	for i := range count {
		pub := Bus(a)
		if i%2 == 1 {
			pub = b
		}
		e := userMsg(users[i%len(users)], i)
		if i%50 == 0 {
			e = msg(i) // a broadcast
		}
		if err := pub.Publish(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []*recorder{ra, rb} {
		last := map[string]int{} // publisher parity + user -> last n
		for range count {
			select {
			case e := <-r.events:
				n := seq(e)
				key := fmt.Sprint(n%2, e.Target.UserID)
				if prev, ok := last[key]; ok && n <= prev {
					t.Fatalf("event %d after %d on %s", n, prev, key)
				}
				last[key] = n
			case <-time.After(waitFor):
				t.Fatalf("only some events received: %v", last)
			}
		}
	}
}

// flow publishes events for user through pub every few milliseconds until
// stop, ignoring failures (the cluster may be failing over); sent is the
// last number published successfully.
type flow struct {
	sent atomic.Int64
	stop func()
}

func startFlow(t *testing.T, pub Bus, user string) *flow {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &flow{}
	f.sent.Store(-1)
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			if err := pub.Publish(ctx, userMsg(user, i)); err == nil {
				f.sent.Store(int64(i))
			}
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	f.stop = func() { cancel(); wg.Wait() }
	t.Cleanup(f.stop)
	return f
}

// orderedReceiver checks that the events of one flow arrive in order and
// tells the highest number received.
type orderedReceiver struct {
	mu   sync.Mutex
	last int
	err  error
	r    *recorder
}

func newOrderedReceiver(t *testing.T, bus callbackBus) *orderedReceiver {
	t.Helper()
	o := &orderedReceiver{last: -1, r: newRecorder()}
	bus.OnSubscribed(func() { o.r.add("subscribed") })
	bus.OnGap(func(reason string) { o.r.add("gap:" + reason) })
	runBus(t, bus, func(_ context.Context, e Event) {
		n := seq(e)
		if n < 0 {
			return
		}
		o.mu.Lock()
		if n <= o.last && o.err == nil {
			o.err = fmt.Errorf("event %d arrived after %d", n, o.last)
		}
		o.last = max(o.last, n)
		o.mu.Unlock()
	})
	return o
}

func (o *orderedReceiver) received() (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.last, o.err
}

// receivedPast waits until o has received an event numbered above n.
func (o *orderedReceiver) receivedPast(t *testing.T, what string, n int64) {
	t.Helper()
	deadline := time.Now().Add(faultWait)
	for {
		last, err := o.received()
		if err != nil {
			t.Fatal(err)
		}
		if int64(last) > n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: last %d, want above %d", what, last, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// runFault runs a flow of events for a user of shard 0 while fault hits
// the cluster, and checks what must hold after it: every shard of both
// instances live again (self-ping), events delivered again, in order, and
// the gap reported on the shard's channel.
func runFault(t *testing.T, fault func(t *testing.T, c *redistest.Cluster, channel string)) {
	c := startShardCluster(t)
	a, b := newShardedBusT(t, c, 0), newShardedBusT(t, c, 2)
	oa, ob := newOrderedReceiver(t, a), newOrderedReceiver(t, b)
	waitLive(t, "every shard live", a, b)
	const n = 0
	ch := shardkey.Channel("t:events", n)
	f := startFlow(t, b, userOnShard(n))
	oa.receivedPast(t, "the flow before the fault", 10)
	ob.receivedPast(t, "the flow before the fault", 10)

	fault(t, c, ch)

	for _, o := range []*orderedReceiver{oa, ob} {
		deadline := time.Now().Add(faultWait)
		for o.r.count(fmt.Sprintf("gap:shard %d: subscription lost", n)) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("no gap reported on shard %d: %v", n, o.r.calls())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitLive(t, "every shard live again after the fault", a, b)
	c.WaitHealthy()
	after := f.sent.Load()
	oa.receivedPast(t, "events after the fault", after)
	ob.receivedPast(t, "events after the fault", after)
	f.stop()
	for _, o := range []*orderedReceiver{oa, ob} {
		if _, err := o.received(); err != nil {
			t.Fatal(err)
		}
		// OnSubscribed fires once every subscription, the classic one
		// included, is confirmed again: shard events can flow before.
		deadline := time.Now().Add(faultWait)
		for o.r.count("subscribed") < 2 {
			if time.Now().After(deadline) {
				t.Fatalf("no resubscription reported: %v", o.r.calls())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// kill -9 of the master serving a shard channel's slot: its replica is
// promoted, the bus finds the channel there.
func TestShardedBusSurvivesMasterKill(t *testing.T) {
	runFault(t, func(t *testing.T, c *redistest.Cluster, ch string) {
		old := c.MasterOfKey(ch)
		c.Kill(old)
		eventuallyFor(t, "the replica to be promoted", func() bool { return c.MasterOfKey(ch) != old })
	})
}

// CLUSTER FAILOVER on the replica of the master serving a shard channel:
// the old master demotes itself and unsubscribes the channel's clients.
func TestShardedBusSurvivesManualFailover(t *testing.T) {
	runFault(t, func(t *testing.T, c *redistest.Cluster, ch string) {
		c.Failover(c.ReplicasOf(c.MasterOfKey(ch))[0])
	})
}

// A shard channel's slot migrated to another master: the old owner sends
// "sunsubscribe", the bus subscribes where the slot is now.
func TestShardedBusSurvivesSlotMigration(t *testing.T) {
	runFault(t, func(t *testing.T, c *redistest.Cluster, ch string) {
		from := c.MasterOfKey(ch)
		for _, m := range c.Masters() {
			if m != from {
				c.MoveSlot(redistest.Slot(ch), m)
				return
			}
		}
	})
}

// SIGSTOP of the master serving a shard channel for longer than
// cluster-node-timeout (its replica is promoted meanwhile), then SIGCONT.
func TestShardedBusSurvivesPausedMaster(t *testing.T) {
	runFault(t, func(t *testing.T, c *redistest.Cluster, ch string) {
		old := c.MasterOfKey(ch)
		c.Pause(old)
		eventuallyFor(t, "the replica to be promoted", func() bool { return c.MasterOfKey(ch) != old })
		c.Cont(old)
	})
}

// eventuallyFor is eventually with the fault deadline.
func eventuallyFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(faultWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// go-redis#3806 (a sharded PubSub that reconnects picks a random node):
// every shard connection of the bus is killed on the server; the bus
// notices, reports a gap per shard and resubscribes on the right masters.
func TestShardedBusSurvivesKilledConnections(t *testing.T) {
	c := startShardCluster(t)
	a := newShardedBusT(t, c, 0)
	o := newOrderedReceiver(t, a)
	waitLive(t, "every shard live", a)
	f := startFlow(t, a, userOnShard(0))
	o.receivedPast(t, "the flow", 10)
	for _, m := range c.Masters() {
		if r, err := m.Do("CLIENT KILL TYPE pubsub"); err != nil || strings.HasPrefix(r, "-") {
			t.Fatalf("CLIENT KILL: %q, %v", r, err)
		}
	}
	eventuallyFor(t, "a gap on every shard", func() bool {
		for n := range testShards {
			if o.r.count(fmt.Sprintf("gap:shard %d: subscription lost", n)) == 0 {
				return false
			}
		}
		return true
	})
	waitLive(t, "every shard live again", a)
	o.receivedPast(t, "events after the kill", f.sent.Load())
}

// Cluster.Live (and with it /readyz) is false while a shard is not live,
// even when the instance's own heartbeats still come back on the classic
// channel: the master serving only a shard channel is stopped (SIGSTOP).
func TestClusterNotLiveWhileAShardIsNot(t *testing.T) {
	c := startShardCluster(t)
	bus := newShardedBusT(t, c, 0)
	cl := NewCluster(bus, ClusterConfig{InstanceID: "a", Interval: 100 * time.Millisecond, LivenessTimeout: 5 * time.Second}, nil, zaptest.NewLogger(t))
	runBus(t, bus, func(_ context.Context, e Event) { cl.Observe(e) })
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { cl.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	eventuallyFor(t, "the cluster view live", cl.Live)

	classic := c.MasterOfKey("t:events")
	var victim *redistest.Node
	for n := range testShards {
		if m := c.MasterOfKey(shardkey.Channel("t:events", n)); m != classic {
			victim = m
			break
		}
	}
	c.Pause(victim)
	paused := true
	t.Cleanup(func() {
		if paused {
			c.Cont(victim)
		}
	})
	eventuallyFor(t, "Live false while a shard's master is stopped", func() bool { return !cl.Live() })
	c.Cont(victim)
	paused = false
	eventuallyFor(t, "Live again", cl.Live)
}
