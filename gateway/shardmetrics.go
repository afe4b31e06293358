package gateway

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessiongate/sessiongate/pubsub"
)

// shardStats is a bus with shard channels ([pubsub.ShardedBus]).
type shardStats interface {
	Shards() []pubsub.ShardStat
}

// shardCollector reports each shard channel's liveness and resubscribes,
// read from the bus at scrape time.
type shardCollector struct {
	bus                shardStats
	live, resubscribes *prometheus.Desc
}

// newShardCollector returns the collector of bus's shards, or nil when the
// bus has none (classic pub/sub).
func newShardCollector(bus pubsub.Bus) prometheus.Collector {
	s, ok := bus.(shardStats)
	if !ok {
		return nil
	}
	return &shardCollector{bus: s,
		live: prometheus.NewDesc("sessiongate_pubsub_shard_live",
			"1 while the shard channel's subscription is confirmed and this instance's own ping on it comes back (sharded pub/sub on Redis Cluster).", []string{"shard"}, nil),
		resubscribes: prometheus.NewDesc("sessiongate_pubsub_shard_resubscribes_total",
			"Subscriptions to the shard channel confirmed after the first (after a lost connection, MOVED, a failover or a slot migration).", []string{"shard"}, nil),
	}
}

func (c *shardCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.live; ch <- c.resubscribes }

func (c *shardCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.bus.Shards() {
		n := strconv.Itoa(s.Shard)
		live := 0.0
		if s.Live {
			live = 1
		}
		ch <- prometheus.MustNewConstMetric(c.live, prometheus.GaugeValue, live, n)
		ch <- prometheus.MustNewConstMetric(c.resubscribes, prometheus.CounterValue, float64(s.Resubscribes), n)
	}
}
