package inbound

import "time"

// Defaults of [Config].
const (
	// DefaultPartitions is the default number of partitions.
	DefaultPartitions = 16
	// DefaultMaxLen is the default cap of messages not yet acknowledged
	// in one partition.
	DefaultMaxLen = 10_000
	// DefaultVisibilityTimeout is the default time a delivered message may
	// stay unacknowledged before another consumer may claim it.
	DefaultVisibilityTimeout = 30 * time.Second
	// DefaultMaxDeliveries is the default number of deliveries before a
	// message goes to the dead letters.
	DefaultMaxDeliveries = 5
	// DefaultGroup is the default consumer group.
	DefaultGroup = "app"
	// DefaultPrefix is the default prefix of the Redis keys (the gateway's
	// REDIS_KEY_PREFIX default).
	DefaultPrefix = "sessiongate:"
)

// Config is the queue's configuration, shared by the gateway (producer)
// and the workers (consumers): both must agree on Partitions and Prefix.
// The zero value is the default configuration.
type Config struct {
	// Partitions is how many partitions (Redis Streams) the queue has; a
	// user's messages all go to partition [Partition](user, Partitions).
	// Changing it moves users to other partitions, so a user's messages
	// queued before and after may be handled out of order: drain the queue
	// first. Defaults to [DefaultPartitions] (INBOUND_PARTITIONS).
	Partitions int
	// MaxLen is how many messages not yet acknowledged one partition
	// holds; Enqueue refuses more with [ErrFull] (never trims). Defaults to
	// [DefaultMaxLen] (INBOUND_MAX_LEN).
	MaxLen int
	// VisibilityTimeout is how long a delivered message may stay
	// unacknowledged before Read hands it to another consumer (a worker
	// that died, or hangs). A worker extends it while its handler runs.
	// Defaults to [DefaultVisibilityTimeout] (INBOUND_VISIBILITY_TIMEOUT).
	VisibilityTimeout time.Duration
	// MaxDeliveries is how many times a message is delivered before it
	// goes to the dead letters. Defaults to [DefaultMaxDeliveries]
	// (INBOUND_MAX_DELIVERIES).
	MaxDeliveries int
	// Group is the consumer group consumers read through. Defaults to
	// [DefaultGroup] (INBOUND_GROUP).
	Group string
	// Prefix is prepended to every Redis key. Defaults to [DefaultPrefix]
	// (REDIS_KEY_PREFIX). Ignored by [Memory].
	Prefix string
}

// withDefaults returns c with every zero (or negative) field set to its
// default.
func (c Config) withDefaults() Config {
	if c.Partitions <= 0 {
		c.Partitions = DefaultPartitions
	}
	if c.MaxLen <= 0 {
		c.MaxLen = DefaultMaxLen
	}
	if c.VisibilityTimeout <= 0 {
		c.VisibilityTimeout = DefaultVisibilityTimeout
	}
	if c.MaxDeliveries <= 0 {
		c.MaxDeliveries = DefaultMaxDeliveries
	}
	if c.Group == "" {
		c.Group = DefaultGroup
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	return c
}
