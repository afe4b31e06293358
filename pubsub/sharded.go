package pubsub

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/internal/shardkey"
)

// Bounds of ShardedConfig.Shards.
const (
	// DefaultShards is the default number of shard channels.
	DefaultShards = 16
	// MaxShards is the most shard channels a bus may use.
	MaxShards = 1024
)

// ShardedConfig configures a [ShardedBus]. Zero fields take their
// defaults.
type ShardedConfig struct {
	// RedisConfig configures the classic channel (Channel, the broadcast
	// and control events) and every shard channel's subscription alike
	// (PublishTimeout, PingInterval). Buffer is the one queue of events
	// waiting for the handler, shared by every channel.
	RedisConfig
	// Shards is the number of shard channels, Channel + ":{n}" for n in
	// [0, Shards). A user's events go on shard internal/shardkey.Of(user,
	// Shards). Defaults to [DefaultShards]; at most [MaxShards].
	Shards int
	// LivenessInterval is how often the bus SPUBLISHes a ping on each
	// shard channel, expecting it back on its own subscription. Defaults
	// to 5s.
	LivenessInterval time.Duration
	// LivenessTimeout: a shard whose ping has not come back for this long
	// is not live (Live is false), and its subscription is dropped and
	// made again on a fresh connection, at most once per timeout. Defaults
	// to 2*LivenessInterval.
	LivenessTimeout time.Duration
}

// withDefaults returns c with every zero field set to its default.
func (c ShardedConfig) withDefaults() ShardedConfig {
	c.RedisConfig = c.RedisConfig.withDefaults()
	if c.Shards <= 0 {
		c.Shards = DefaultShards
	}
	c.Shards = min(c.Shards, MaxShards)
	if c.LivenessInterval <= 0 {
		c.LivenessInterval = 5 * time.Second
	}
	if c.LivenessTimeout <= 0 {
		c.LivenessTimeout = 2 * c.LivenessInterval
	}
	return c
}

// ShardedBus is a [Bus] for Redis Cluster (Redis 7 or later) that sends
// the events of one user (messages with a user target) with SPUBLISH on
// one of a fixed number of shard channels, so each reaches only the nodes
// of the shard serving that channel's slot, while every other event
// (broadcasts, revocations, heartbeats) keeps the classic channel that
// every node relays. Every instance subscribes to every shard channel:
// a user's connections may be on any instance.
//
// Each channel has its own subscription on its own connection, with the
// classic bus's health check, backoff and gap reports, re-established on
// any error (a MOVED or a "sunsubscribe" after a slot moved, a failover, a
// lost connection) after the cluster client reloaded its slot map; and
// each shard proves itself with a ping the bus SPUBLISHes on it and
// expects back. Events of one channel reach the handler in the order the
// channel delivered them.
//
// Publish, Live, Shards and the counters are safe for concurrent use; Run
// may run once at a time.
type ShardedBus struct {
	rdb     redis.UniversalClient
	cfg     ShardedConfig
	log     *zap.Logger
	classic *RedisBus
	shards  []*shard
	// token tells this bus's pings from other instances'.
	token string

	running      atomic.Bool
	onSubscribed atomic.Pointer[func()]
	onGap        atomic.Pointer[func(reason string)]
	classicUp    atomic.Bool
}

// shard is one shard channel: its subscription and its liveness.
type shard struct {
	n       int
	channel string
	bus     *RedisBus
	// ping asks the shard's watcher to ping now (after a confirmation).
	ping chan struct{}

	up           atomic.Bool  // the subscription is confirmed
	upAt         atomic.Int64 // unix nanos of the last confirmation
	pongAt       atomic.Int64 // unix nanos: own ping last seen
	pingOK       atomic.Bool  // the last ping was published
	live         atomic.Bool  // last reported liveness (for transition logs)
	confirms     atomic.Uint64
	resubscribes atomic.Uint64
}

// NewShardedBus returns a sharded bus publishing and subscribing through
// rdb (a cluster client), which the caller owns and closes after Run has
// returned. It starts nothing: Run subscribes. See [NewRedisBus] for what
// rdb should bound.
func NewShardedBus(rdb redis.UniversalClient, cfg ShardedConfig, log *zap.Logger) *ShardedBus {
	cfg = cfg.withDefaults()
	b := &ShardedBus{rdb: rdb, cfg: cfg, log: log, token: NewEventID()}
	b.classic = NewRedisBus(rdb, cfg.RedisConfig, log)
	b.classic.OnSubscribed(func() { b.classicUp.Store(true); b.subscribed() })
	b.classic.OnGap(func(reason string) {
		if strings.HasPrefix(reason, "subscription lost") {
			b.classicUp.Store(false)
		}
		b.gap(reason)
	})
	for n := range cfg.Shards {
		sc := cfg.RedisConfig
		sc.Channel = shardkey.Channel(cfg.Channel, n)
		sh := &shard{n: n, channel: sc.Channel, ping: make(chan struct{}, 1)}
		sh.bus = NewRedisBus(rdb, sc, log.With(zap.Int("shard", n)))
		sh.bus.sharded = true
		sh.bus.intercept = func(payload string) bool { return b.pong(sh, payload) }
		sh.bus.OnSubscribed(func() {
			if sh.up.Load() {
				// Not a new subscription: events were dropped here (a
				// full buffer) and the subscription stays; nothing to
				// count or prove again.
				b.subscribed()
				return
			}
			if sh.confirms.Add(1) > 1 {
				sh.resubscribes.Add(1)
			}
			sh.upAt.Store(time.Now().UnixNano())
			sh.up.Store(true)
			select { // prove the new subscription at once
			case sh.ping <- struct{}{}:
			default:
			}
			b.subscribed()
		})
		sh.bus.OnGap(func(reason string) {
			if strings.HasPrefix(reason, "subscription lost") {
				sh.up.Store(false)
			}
			b.gap(fmt.Sprintf("shard %d: %s", n, reason))
		})
		b.shards = append(b.shards, sh)
	}
	return b
}

// OnSubscribed sets fn to be called when a subscription is confirmed and
// every other one (the classic channel's and each shard's) is confirmed
// too: from then on every event published reaches this instance. Set it
// before Run; fn must not block.
func (b *ShardedBus) OnSubscribed(fn func()) { b.onSubscribed.Store(&fn) }

// OnGap sets fn to be called whenever events may have been lost on one
// channel, as [RedisBus.OnGap] says, with reasons of a shard channel
// prefixed "shard <n>: ". Set it before Run; fn must not block.
func (b *ShardedBus) OnGap(fn func(reason string)) { b.onGap.Store(&fn) }

// Publish sends e: a message for a user with SPUBLISH on the user's shard
// channel, anything else with PUBLISH on the classic channel, bounded by
// PublishTimeout. (The gateway's messages go through the history, whose
// script publishes the same way.)
func (b *ShardedBus) Publish(ctx context.Context, e Event) error {
	if e.Kind != KindMessage || e.Target == nil || e.Target.UserID == "" {
		return b.classic.Publish(ctx, e)
	}
	payload, err := e.Encode()
	if err != nil {
		return err
	}
	ch := b.ShardChannel(e.Target.UserID)
	if err := publishOn(ctx, b.rdb, "spublish", ch, payload, b.cfg.PublishTimeout); err != nil {
		return fmt.Errorf("pubsub: spublish %s: %w", e.Kind, err)
	}
	return nil
}

// ShardChannel is the shard channel of userID's events.
func (b *ShardedBus) ShardChannel(userID string) string {
	return shardkey.Channel(b.cfg.Channel, shardkey.Of(userID, b.cfg.Shards))
}

// Run subscribes to the classic channel and to every shard channel, each
// on its own connection, and hands every decoded event to h from one
// goroutine until ctx is done; each shard is pinged every
// LivenessInterval. It returns nil after every goroutine it started has
// exited, or [ErrAlreadyRunning].
func (b *ShardedBus) Run(ctx context.Context, h Handler) error {
	if !b.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer b.running.Store(false)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan Event, b.cfg.Buffer)
	var wg sync.WaitGroup
	b.classic.start(ctx, &wg, queue)
	defer b.classic.sub.Store(nil)
	for _, sh := range b.shards {
		sh.bus.start(ctx, &wg, queue)
		defer sh.bus.sub.Store(nil)
		wg.Add(1)
		go func() { defer wg.Done(); b.watch(ctx, sh) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); dispatch(ctx, queue, h) }()
	wg.Wait()
	return nil
}

// Live reports whether every shard is live: its subscription is
// confirmed and its own ping came back after the confirmation, within
// LivenessTimeout. The classic channel's liveness is [Cluster]'s own
// heartbeat, which also asks this (Cluster.Live is false while a shard is
// not live).
func (b *ShardedBus) Live() bool {
	now := time.Now()
	for _, sh := range b.shards {
		if !b.shardLive(sh, now) {
			return false
		}
	}
	return true
}

// shardsLive is Live for [Cluster].
func (b *ShardedBus) shardsLive() bool { return b.Live() }

// ShardStat is one shard channel's state, for metrics.
type ShardStat struct {
	Shard   int
	Channel string
	// Live is the shard's liveness (see [ShardedBus.Live]).
	Live bool
	// Resubscribes counts confirmed subscriptions after the first.
	Resubscribes uint64
}

// Shards returns the state of every shard channel, by shard number.
func (b *ShardedBus) Shards() []ShardStat {
	now := time.Now()
	out := make([]ShardStat, len(b.shards))
	for i, sh := range b.shards {
		out[i] = ShardStat{Shard: sh.n, Channel: sh.channel, Live: b.shardLive(sh, now),
			Resubscribes: sh.resubscribes.Load()}
	}
	return out
}

// Dropped returns how many received events were dropped because the
// handler fell behind, on every channel.
func (b *ShardedBus) Dropped() uint64 {
	n := b.classic.Dropped()
	for _, sh := range b.shards {
		n += sh.bus.Dropped()
	}
	return n
}

// Malformed returns how many received payloads were skipped, on every
// channel.
func (b *ShardedBus) Malformed() uint64 {
	n := b.classic.Malformed()
	for _, sh := range b.shards {
		n += sh.bus.Malformed()
	}
	return n
}

// resubscribe drops the classic subscription when this instance's own
// heartbeat does not come back ([Cluster]); the shards watch themselves.
func (b *ShardedBus) resubscribe() { b.classic.resubscribe() }

// subscribed calls OnSubscribed when every subscription is confirmed.
func (b *ShardedBus) subscribed() {
	if !b.classicUp.Load() {
		return
	}
	for _, sh := range b.shards {
		if !sh.up.Load() {
			return
		}
	}
	if fn := b.onSubscribed.Load(); fn != nil && *fn != nil {
		(*fn)()
	}
}

// gap calls the OnGap callback, if any.
func (b *ShardedBus) gap(reason string) {
	if fn := b.onGap.Load(); fn != nil && *fn != nil {
		(*fn)(reason)
	}
}
