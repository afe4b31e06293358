package history

import "time"

// Defaults of [Config].
const (
	// DefaultSize is the default number of events kept per stream.
	DefaultSize = 100
	// DefaultTTL is the default time an idle stream is kept.
	DefaultTTL = 24 * time.Hour
)

// Config is the history's configuration. The zero value is the default
// configuration, with history on.
type Config struct {
	// Size is how many of the latest events each stream keeps at least
	// (Redis trims with MAXLEN ~, so it may keep up to about 100 more; the
	// memory ring keeps exactly Size). Defaults to [DefaultSize]; a negative
	// value turns history off. (HISTORY_SIZE=0 is meant to map to -1.)
	Size int
	// TTL is how long a stream is kept after its last append: then it is
	// lost and the next append starts a new epoch. Defaults to
	// [DefaultTTL]; a negative value turns history off. Redis rounds it to
	// whole milliseconds, and at least 1ms.
	TTL time.Duration
	// Prefix is prepended to every Redis key (the gateway passes its key
	// prefix, "sessiongate:" by default). Ignored by [Memory].
	Prefix string
	// Shards is the number of shard channels of a sharded event bus
	// (PUBSUB_SHARDS on Redis Cluster); 0, the default, is the classic
	// bus. With Shards set, a user stream's keys carry the hash tag of the
	// user's shard (internal/shardkey) and Append SPUBLISHes its live
	// envelope on the shard channel channel + ":{n}"; other streams
	// PUBLISH on channel as before. Changing it renames the user streams'
	// keys: their histories start a new epoch. Ignored by [Memory].
	Shards int
}

// Off reports whether c turns history off. With history off, Append keeps
// nothing but still publishes the live envelope (with the zero position),
// so live delivery works the same; Position returns the zero Position; and
// Since returns Recovered false for every position: a reconnecting client
// is told that it may have missed events.
func (c Config) Off() bool { return c.Size < 0 || c.TTL < 0 }

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Size == 0 {
		c.Size = DefaultSize
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	return c
}
