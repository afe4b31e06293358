// Package wiring builds, from the process configuration, the parts a gateway
// is made of: the session codec, the session store, the event bus and the
// event history, over Redis or in memory. cmd/gateway and the gateway's tests build them with the
// same code, so a test gateway is wired like the real one.
package wiring

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/history"
	"github.com/sessiongate/sessiongate/inbound"
	"github.com/sessiongate/sessiongate/presence"
	"github.com/sessiongate/sessiongate/pubsub"
	"github.com/sessiongate/sessiongate/session"
)

// Parts are a gateway's session codec, session store, event bus and event
// history.
type Parts struct {
	Codec *session.Codec
	Store session.Store
	Bus   pubsub.Bus
	// History stores published events and publishes them on the bus's
	// channel in the same step: the Redis history (its script PUBLISHes on
	// the channel), or the memory history whose publish hook hands the
	// envelope to the in-process bus. With history off it still publishes.
	History History
	// Inbound is the queue of client messages: Redis Streams, or the
	// in-process queue in embedded mode.
	Inbound Inbound
	// Presence is the presence store (Redis, or memory in embedded
	// mode); nil with PRESENCE_ENABLED=false.
	Presence presence.Store
}

// PresenceConfig is the Redis presence store configuration cfg sets. An
// instance's records outlive its last refresh by 10 minutes (or 10
// heartbeat intervals, if longer): the survivors purge them after 3
// intervals, and readers ignore them from then on anyway; the long TTL
// lets an instance restarted after a whole-cluster outage still find, and
// take offline, the users its previous process held.
func PresenceConfig(cfg config.Config) presence.RedisConfig {
	return presence.RedisConfig{Prefix: cfg.KeyPrefix, TTL: max(10*time.Minute, 10*cfg.HeartbeatInterval)}
}

// Inbound is the inbound queue as a process uses it: the gateway
// produces, an in-process worker consumes, the admin API reads.
// *inbound.Redis and *inbound.Memory.
type Inbound interface {
	inbound.Producer
	inbound.Consumer
	inbound.Admin
}

// InboundConfig is the inbound queue configuration cfg sets.
func InboundConfig(cfg config.Config) inbound.Config {
	return inbound.Config{
		Partitions:        cfg.InboundPartitions,
		MaxLen:            cfg.InboundMaxLen,
		VisibilityTimeout: cfg.InboundVisibilityTimeout,
		MaxDeliveries:     cfg.InboundMaxDeliveries,
		Group:             cfg.InboundGroup,
		Prefix:            cfg.KeyPrefix,
	}
}

// History is what the gateway needs of a history: *history.Redis and
// *history.Memory.
type History interface {
	Append(ctx context.Context, stream string, data []byte, channel string) (history.Position, error)
	Positions(ctx context.Context, streams ...string) ([]history.Position, error)
	Since(ctx context.Context, stream string, pos history.Position, limit int) (history.Result, error)
}

// HistoryConfig is the history configuration cfg sets: HISTORY_SIZE=0 or
// HISTORY_TTL=0 turns it off; on a sharded bus (Config.ShardedPubsub) user
// streams publish on their shard channel. The worker's replies use it too,
// so they travel like the gateway's publishes.
func HistoryConfig(cfg config.Config) history.Config {
	hc := history.Config{Size: cfg.HistorySize, TTL: cfg.HistoryTTL, Prefix: cfg.KeyPrefix,
		Shards: cfg.ShardedPubsub()}
	if cfg.HistoryOff() {
		hc.Size, hc.TTL = -1, -1
	}
	return hc
}

// SessionOptions are the store options cfg sets.
func SessionOptions(cfg config.Config) session.Options {
	return session.Options{
		Prefix:        cfg.KeyPrefix,
		IdleTTL:       cfg.SessionIdleTTL,
		Lifetime:      cfg.SessionLifetime,
		TouchInterval: cfg.SessionTouchInterval,
	}
}

// EventChannel is the pub/sub channel of cfg's key prefix.
func EventChannel(cfg config.Config) string { return cfg.KeyPrefix + "events" }

// NewBus is the Redis bus cfg asks for: a [pubsub.ShardedBus] on a Redis
// Cluster with PUBSUB_SHARDS > 0, the classic [pubsub.RedisBus]
// otherwise.
func NewBus(cfg config.Config, rdb redis.UniversalClient, log *zap.Logger) pubsub.Bus {
	rc := pubsub.RedisConfig{Channel: EventChannel(cfg)}
	if n := cfg.ShardedPubsub(); n > 0 {
		return pubsub.NewShardedBus(rdb, pubsub.ShardedConfig{RedisConfig: rc, Shards: n,
			LivenessInterval: cfg.HeartbeatInterval}, log)
	}
	return pubsub.NewRedisBus(rdb, rc, log)
}

// Build builds the parts for cfg: the Redis store and bus over rdb, or the
// memory store and the in-process bus when rdb is nil (embedded mode, or a
// development fallback). log is the process logger; the bus logs as
// "pubsub". now, when not nil, is the store's clock (tests); nil is the
// wall clock. Build starts nothing.
func Build(cfg config.Config, rdb redis.UniversalClient, log *zap.Logger, now func() time.Time) (Parts, error) {
	codec, err := session.NewCodec(cfg.SessionSecret)
	if err != nil {
		return Parts{}, fmt.Errorf("wiring: %w", err)
	}
	keys, err := session.NewKeyring(cfg.EncryptionKeys)
	if err != nil {
		return Parts{}, fmt.Errorf("wiring: %w", err)
	}
	opts := SessionOptions(cfg)
	opts.Now = now
	if rdb == nil {
		bus := pubsub.NewLocalBus(log.Named("pubsub"))
		var pres presence.Store
		if cfg.PresenceEnabled {
			pres = presence.NewMemory(now)
		}
		return Parts{
			Presence: pres,
			Codec:    codec,
			Store:    session.NewMemoryStore(codec, opts),
			Bus:      bus,
			History: history.NewMemory(HistoryConfig(cfg), history.MemoryOptions{
				Now:     now,
				Publish: func(_ string, msg []byte) { bus.Deliver(msg) },
			}),
			Inbound: inbound.NewMemory(InboundConfig(cfg), inbound.MemoryOptions{Now: now}),
		}, nil
	}
	store, err := session.NewRedisStore(rdb, codec, keys, opts)
	if err != nil {
		return Parts{}, fmt.Errorf("wiring: %w", err)
	}
	var pres presence.Store
	if cfg.PresenceEnabled {
		pres = presence.NewRedis(rdb, PresenceConfig(cfg))
	}
	return Parts{
		Presence: pres,
		Codec:    codec,
		Store:    store,
		Bus:      NewBus(cfg, rdb, log.Named("pubsub")),
		History:  history.NewRedis(rdb, HistoryConfig(cfg)),
		Inbound:  inbound.NewRedis(rdb, InboundConfig(cfg)),
	}, nil
}
