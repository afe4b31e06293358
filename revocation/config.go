package revocation

import (
	"fmt"
	"time"

	"github.com/sessiongate/sessiongate/pubsub"
)

// DefaultStoreTimeout is Config.StoreTimeout's default.
const DefaultStoreTimeout = 5 * time.Second

// Config tunes a [Revoker]. It is a value; zero fields take the documented
// defaults and negative ones are refused by [New].
type Config struct {
	// InstanceID names this instance as the origin of the events it
	// publishes; events with this origin are its own and are skipped.
	// Required.
	InstanceID string
	// SweepInterval is how often every session this instance holds
	// connections for is checked against the store (and its idle TTL
	// extended). It bounds how long a revocation pub/sub lost can stay
	// connected. Defaults to 30s.
	SweepInterval time.Duration
	// TombstoneTTL is how long a confirmed revocation's handle is refused
	// without a store read. It must outlive the race it covers (an event
	// ahead of the store delete). Defaults to max(2×SweepInterval, 1m).
	// A revocation that is still queued keeps its tombstone regardless.
	TombstoneTTL time.Duration
	// MaxTombstones bounds the confirmed tombstones, and separately the
	// logins made here whose index entry is still checked (see
	// [Revoker.Created]); past it the oldest go first. Defaults to 100000.
	MaxTombstones int
	// StoreTimeout bounds one store call (a delete, a generation read, one
	// batch of existence checks). Defaults to 5s.
	StoreTimeout time.Duration
	// PublishTimeout bounds one publish. Defaults to 2s.
	PublishTimeout time.Duration
	// RetryMin is the first delay before retrying a failed reconcile pass
	// or a queued revocation; it doubles per failure up to RetryMax.
	// Defaults to 500ms.
	RetryMin time.Duration
	// RetryMax caps the retry delay. Defaults to 10s, and is never more
	// than SweepInterval.
	RetryMax time.Duration
	// HandlesPerEvent bounds the handles one user.revoked event carries; a
	// user with more destroyed sessions is announced in several events.
	// Defaults to, and may not exceed, [pubsub.MaxRevokedHandles].
	HandlesPerEvent int
	// ReconcileBatch bounds one pipelined existence check. Defaults to 5000.
	ReconcileBatch int
}

// withDefaults validates c and fills in its defaults.
func (c Config) withDefaults() (Config, error) {
	if c.InstanceID == "" {
		return c, fmt.Errorf("%w: InstanceID is required", ErrInvalidConfig)
	}
	for name, d := range map[string]time.Duration{
		"SweepInterval": c.SweepInterval, "TombstoneTTL": c.TombstoneTTL, "StoreTimeout": c.StoreTimeout,
		"PublishTimeout": c.PublishTimeout, "RetryMin": c.RetryMin, "RetryMax": c.RetryMax,
	} {
		if d < 0 {
			return c, fmt.Errorf("%w: %s is negative", ErrInvalidConfig, name)
		}
	}
	if c.MaxTombstones < 0 || c.HandlesPerEvent < 0 || c.ReconcileBatch < 0 {
		return c, fmt.Errorf("%w: MaxTombstones, HandlesPerEvent and ReconcileBatch must not be negative", ErrInvalidConfig)
	}
	if c.HandlesPerEvent > pubsub.MaxRevokedHandles {
		return c, fmt.Errorf("%w: HandlesPerEvent %d exceeds %d", ErrInvalidConfig, c.HandlesPerEvent, pubsub.MaxRevokedHandles)
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = 30 * time.Second
	}
	if c.TombstoneTTL == 0 {
		c.TombstoneTTL = max(2*c.SweepInterval, time.Minute)
	}
	if c.MaxTombstones == 0 {
		c.MaxTombstones = 100_000
	}
	if c.StoreTimeout == 0 {
		c.StoreTimeout = DefaultStoreTimeout
	}
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 2 * time.Second
	}
	if c.RetryMin == 0 {
		c.RetryMin = 500 * time.Millisecond
	}
	if c.RetryMax == 0 {
		c.RetryMax = 10 * time.Second
	}
	c.RetryMax = max(min(c.RetryMax, c.SweepInterval), c.RetryMin)
	if c.HandlesPerEvent == 0 {
		c.HandlesPerEvent = pubsub.MaxRevokedHandles
	}
	if c.ReconcileBatch == 0 {
		c.ReconcileBatch = 5000
	}
	return c, nil
}
