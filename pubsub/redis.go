package pubsub

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// RedisConfig configures a [RedisBus]. Zero fields take their defaults.
type RedisConfig struct {
	// Channel is the pub/sub channel. Defaults to "sessiongate:events"; the
	// gateway passes its key prefix + "events".
	Channel string
	// PublishTimeout bounds one PUBLISH. Defaults to 2s.
	PublishTimeout time.Duration
	// Buffer is how many received events may wait for the handler. When the
	// handler falls behind and the buffer is full, an event is dropped,
	// counted, logged (rate-limited) and reported through OnGap, because a
	// lost event must trigger reconciliation. Defaults to 4096.
	Buffer int
	// PingInterval is the subscription health check: when nothing arrived
	// for this long the bus sends PING (bounded by one interval), and when
	// nothing arrived for three intervals, a PING failed, or a SUBSCRIBE was
	// neither confirmed nor refused within three intervals, it drops the
	// connection and subscribes again on a fresh one (a half-open TCP
	// connection otherwise blocks forever). A subscription that lasted this
	// long counts as stable: losing it is retried at once, not after the
	// current backoff. Defaults to 5s.
	PingInterval time.Duration
}

// withDefaults returns c with every zero field set to its default.
func (c RedisConfig) withDefaults() RedisConfig {
	if c.Channel == "" {
		c.Channel = "sessiongate:events"
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 2 * time.Second
	}
	if c.Buffer <= 0 {
		c.Buffer = 4096
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 5 * time.Second
	}
	return c
}

// RedisBus is a [Bus] over Redis pub/sub: one PUBLISH per event, one
// subscriber connection per bus. It works with every redis.UniversalClient
// (single node, Sentinel, Cluster, where PUBLISH reaches every node). Events
// one goroutine publishes one after the other arrive in that order.
//
// Publish, Dropped and Malformed are safe for concurrent use; Run may run
// once at a time.
type RedisBus struct {
	rdb redis.UniversalClient
	cfg RedisConfig
	log *zap.Logger

	running      atomic.Bool
	sub          atomic.Pointer[subscriber] // of the running Run, if any
	onSubscribed atomic.Pointer[func()]
	onGap        atomic.Pointer[func(reason string)]
	dropped      atomic.Uint64
	malformed    atomic.Uint64

	dropLog logLimiter
	badLog  logLimiter

	// Set by [ShardedBus] for a shard channel's bus, before Run:
	// sharded subscribes with SSUBSCRIBE; intercept, if set, sees every
	// payload first and swallows those it returns true for (the shard's
	// self-ping).
	sharded   bool
	intercept func(payload string) bool
}

// NewRedisBus returns a bus publishing and subscribing through rdb, which
// the caller owns and closes after Run has returned. It starts nothing: Run
// subscribes.
//
// rdb should bound its reads by ctx (ContextTimeoutEnabled, as
// redisconn builds it) or by a positive ReadTimeout: go-redis runs the
// handshake of each new subscriber connection under its own lock, and a
// server that accepts and never answers it would otherwise hold the
// subscriber (and Run's return) until it answers.
func NewRedisBus(rdb redis.UniversalClient, cfg RedisConfig, log *zap.Logger) *RedisBus {
	cfg = cfg.withDefaults()
	return &RedisBus{
		rdb:     rdb,
		cfg:     cfg,
		log:     log.With(zap.String("channel", cfg.Channel)),
		dropLog: logLimiter{every: 5 * time.Second},
		badLog:  logLimiter{every: 5 * time.Second},
	}
}

// OnSubscribed sets fn to be called after every subscribe confirmation, the
// first one included, from the bus's reader goroutine. Events published
// before the confirmation may have been missed. Set it before Run; fn must
// not block.
func (b *RedisBus) OnSubscribed(fn func()) { b.onSubscribed.Store(&fn) }

// OnGap sets fn to be called whenever events may have been lost: a
// confirmed subscription failed or was cut (reason "subscription lost: ...",
// once per outage however many resubscribe attempts fail), or an
// event was dropped because the handler fell behind (reason "buffer
// overflow", once per dropped event). It is called from the bus's reader
// goroutine; set it before Run; fn must not block (coalesce, then reconcile
// elsewhere).
func (b *RedisBus) OnGap(fn func(reason string)) { b.onGap.Store(&fn) }

// Dropped returns how many received events were dropped because the
// handler fell behind.
func (b *RedisBus) Dropped() uint64 { return b.dropped.Load() }

// Malformed returns how many received payloads were skipped because they
// did not decode (bad JSON, missing field, wrong version, unknown kind, too
// large).
func (b *RedisBus) Malformed() uint64 { return b.malformed.Load() }

// Publish encodes e and PUBLISHes it, bounded by PublishTimeout whatever
// the client's own timeouts. It returns the [Event.Encode] error for an
// invalid event, or the Redis error. After a timeout the event may still
// be delivered, later than events published after it.
func (b *RedisBus) Publish(ctx context.Context, e Event) error {
	payload, err := e.Encode()
	if err != nil {
		return err
	}
	if err := publishOn(ctx, b.rdb, "publish", b.cfg.Channel, payload, b.cfg.PublishTimeout); err != nil {
		return fmt.Errorf("pubsub: publish %s: %w", e.Kind, err)
	}
	return nil
}

// publishOn sends one PUBLISH or SPUBLISH (cmd) of payload on channel,
// bounded by timeout whatever the client's own timeouts.
func publishOn(ctx context.Context, rdb redis.UniversalClient, cmdName, channel string, payload []byte, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// PUBLISH is keyless, so a cluster client would spread it over the
	// masters, and two events from this instance could overtake each other
	// on their way through the cluster bus. Routing it like a key to the
	// channel's slot owner, the node the subscribers use too, keeps the
	// order. (SPUBLISH is routed so anyway.)
	cmd := redis.NewIntCmd(ctx, cmdName, channel, payload)
	cmd.SetFirstKeyPos(1)
	// go-redis bounds socket reads by ctx only when the client was built
	// with ContextTimeoutEnabled (redisconn builds every client so); then
	// the command runs here, on the caller's goroutine: a revocation's
	// event goes out a goroutine start sooner. Otherwise its ReadTimeout
	// bounds them, which may be "none", so the command runs on a goroutine
	// of its own and the wait here is on ctx: PublishTimeout holds for any
	// client, and the command finishes (or fails) on its own after it.
	if boundsByContext(rdb) {
		if err := rdb.Process(ctx, cmd); err != nil && ctx.Err() != nil {
			return ctx.Err() // the same error as the wait below gives
		}
		return cmd.Err()
	}
	done := make(chan error, 1)
	go func() {
		_ = rdb.Process(ctx, cmd)
		done <- cmd.Err()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// boundsByContext reports whether rdb bounds a command's socket reads and
// writes by its context's deadline (go-redis's ContextTimeoutEnabled).
func boundsByContext(rdb redis.UniversalClient) bool {
	switch c := rdb.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

// resubscribe asks Run to drop a confirmed subscription that does not
// deliver (this instance's own heartbeats do not come back) and subscribe
// again on a fresh connection. It never blocks. [Cluster] calls it.
func (b *RedisBus) resubscribe() {
	if s := b.sub.Load(); s != nil {
		s.resubscribe()
	}
}

// subscribed calls the OnSubscribed callback, if any.
func (b *RedisBus) subscribed() {
	if fn := b.onSubscribed.Load(); fn != nil && *fn != nil {
		(*fn)()
	}
}

// gap calls the OnGap callback, if any.
func (b *RedisBus) gap(reason string) {
	if fn := b.onGap.Load(); fn != nil && *fn != nil {
		(*fn)(reason)
	}
}
