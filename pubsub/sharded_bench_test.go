package pubsub

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/internal/redistest"
	"github.com/sessiongate/sessiongate/internal/shardkey"
)

// BenchmarkClusterPublishToUser compares classic PUBLISH with sharded
// SPUBLISH on a real 3-master Redis Cluster: b.N message events for 1000
// users, published by 8 goroutines through one instance's bus, each
// delivered to 3 subscribing instances. It reports the delivered
// throughput, the p50/p99 publish-to-handler latency, each master's CPU
// time spent (INFO cpu, user+sys, before/after) and, per master, the
// shard channels it serves subscriptions for (PUBSUB SHARDNUMSUB) or the
// classic channel's subscribers (PUBSUB NUMSUB).
//
// Run it alone and briefly on a shared machine, e.g.
// go test ./pubsub -run '^$' -bench ClusterPublishToUser -benchtime 3000x
func BenchmarkClusterPublishToUser(b *testing.B) {
	c := redistest.StartCluster(b, redistest.ClusterOptions{Masters: 3})
	for _, mode := range []string{"classic", "sharded"} {
		b.Run(mode, func(b *testing.B) { benchPublishToUser(b, c, mode) })
	}
}

func benchPublishToUser(b *testing.B, c *redistest.Cluster, mode string) {
	const subscribers, publishers, users, shards = 3, 8, 1000, DefaultShards
	channel := "bench:" + mode + ":events"
	newBus := func(i int) Bus {
		rdb := newClusterClient(b, c, i)
		rc := RedisConfig{Channel: channel, Buffer: 1 << 16}
		if mode == "sharded" {
			return NewShardedBus(rdb, ShardedConfig{RedisConfig: rc, Shards: shards}, zap.NewNop())
		}
		return NewRedisBus(rdb, rc, zap.NewNop())
	}
	var (
		mu       sync.Mutex
		lat      []time.Duration
		received atomic.Int64
	)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	var live []func() bool
	for i := range subscribers {
		bus := newBus(i)
		switch bb := bus.(type) {
		case *ShardedBus:
			live = append(live, bb.Live)
		case *RedisBus:
			up := &atomic.Bool{}
			bb.OnSubscribed(func() { up.Store(true) })
			live = append(live, up.Load)
		}
		wg.Go(func() {
			_ = bus.Run(ctx, func(_ context.Context, e Event) {
				var d struct{ T int64 }
				if json.Unmarshal(e.Data, &d) != nil || d.T == 0 {
					return
				}
				l := time.Since(time.Unix(0, d.T))
				mu.Lock()
				lat = append(lat, l)
				mu.Unlock()
				received.Add(1)
			})
		})
	}
	deadline := time.Now().Add(time.Minute)
	for _, l := range live {
		for !l() {
			if time.Now().After(deadline) {
				b.Fatal("subscribers not ready")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	pub := newBus(subscribers)
	cpu0 := masterCPU(b, c)
	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var pw sync.WaitGroup
	for range publishers {
		pw.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				e := Event{Kind: KindMessage, ID: NewEventID(), Origin: "bench",
					Target: &Target{UserID: "user" + strconv.FormatInt(i%users, 10)}, Name: "n",
					Data: json.RawMessage(fmt.Sprintf(`{"t":%d}`, time.Now().UnixNano()))}
				if err := pub.Publish(ctx, e); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	pw.Wait()
	want := int64(b.N * subscribers)
	for received.Load() < want {
		if time.Since(start) > 5*time.Minute {
			b.Fatalf("received %d of %d", received.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cpu1 := masterCPU(b, c)
	b.ReportMetric(float64(want)/elapsed.Seconds(), "deliveries/s")
	mu.Lock()
	reportLatencies(b, lat)
	mu.Unlock()
	for i, m := range c.Masters() {
		b.ReportMetric((cpu1[m.Addr()]-cpu0[m.Addr()])*1000, fmt.Sprintf("cpu-ms-m%d", i))
		b.ReportMetric(float64(subscriptionsOn(b, m, mode, channel, shards)), fmt.Sprintf("subs-m%d", i))
	}
}

// masterCPU returns used_cpu_user+used_cpu_sys of every master, by address.
func masterCPU(b *testing.B, c *redistest.Cluster) map[string]float64 {
	out := map[string]float64{}
	for _, m := range c.Masters() {
		rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
		info, err := rdb.Info(context.Background(), "cpu").Result()
		_ = rdb.Close()
		if err != nil {
			b.Fatal(err)
		}
		for _, line := range strings.Split(info, "\r\n") {
			k, v, _ := strings.Cut(line, ":")
			if k == "used_cpu_user" || k == "used_cpu_sys" {
				f, _ := strconv.ParseFloat(v, 64)
				out[m.Addr()] += f
			}
		}
	}
	return out
}

// subscriptionsOn counts the subscriptions master m holds for the bench's
// channels: the sum of PUBSUB SHARDNUMSUB over the shard channels (sharded)
// or PUBSUB NUMSUB of the classic channel (classic).
func subscriptionsOn(b *testing.B, m *redistest.Node, mode, channel string, shards int) int64 {
	rdb := redis.NewClient(&redis.Options{Addr: m.Addr()})
	defer rdb.Close()
	ctx := context.Background()
	if mode == "classic" {
		n, err := rdb.PubSubNumSub(ctx, channel).Result()
		if err != nil {
			b.Fatal(err)
		}
		return n[channel]
	}
	var chs []string
	for n := range shards {
		chs = append(chs, shardkey.Channel(channel, n))
	}
	n, err := rdb.PubSubShardNumSub(ctx, chs...).Result()
	if err != nil {
		b.Fatal(err)
	}
	var sum int64
	for _, v := range n {
		sum += v
	}
	return sum
}
