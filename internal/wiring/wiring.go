// Package wiring builds, from the process configuration, the parts a gateway
// is made of: the session codec, the session store and the event bus, over
// Redis or in memory. cmd/gateway and the gateway's tests build them with the
// same code, so a test gateway is wired like the real one.
package wiring

import (
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/pubsub"
	"github.com/sessiongate/sessiongate/session"
)

// Parts are a gateway's session codec, session store and event bus.
type Parts struct {
	Codec *session.Codec
	Store session.Store
	Bus   pubsub.Bus
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
		return Parts{
			Codec: codec,
			Store: session.NewMemoryStore(codec, opts),
			Bus:   pubsub.NewLocalBus(log.Named("pubsub")),
		}, nil
	}
	store, err := session.NewRedisStore(rdb, codec, keys, opts)
	if err != nil {
		return Parts{}, fmt.Errorf("wiring: %w", err)
	}
	return Parts{
		Codec: codec,
		Store: store,
		Bus:   pubsub.NewRedisBus(rdb, pubsub.RedisConfig{Channel: EventChannel(cfg)}, log.Named("pubsub")),
	}, nil
}
