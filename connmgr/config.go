package connmgr

import "time"

// Config configures a [Manager]. It is a value; zero fields take the
// documented defaults.
type Config struct {
	// InstanceID names this gateway instance in the welcome frame.
	InstanceID string
	// Shards is the number of registry shards. Defaults to 64.
	Shards int
	// SendQueue is the bound of each connection's outbound queue, in frames.
	// A full queue closes the connection with [CodeSlowConsumer].
	// Defaults to 64 messages per connection.
	SendQueue int
	// MaxMessageBytes is the read limit for one client message; a larger one
	// closes the connection with [CodeTooBig]. Defaults to 32 KiB.
	MaxMessageBytes int64
	// PingInterval is how often each connection gets a {"type":"ping"}.
	// Defaults to 25s.
	PingInterval time.Duration
	// PongTimeout is the grace after a ping interval: a connection with no
	// pong (or any other frame) for PingInterval+PongTimeout is closed with
	// [CodeHeartbeatTimeout]. Defaults to 10s.
	PongTimeout time.Duration
	// WriteTimeout bounds every frame write. Defaults to 10s.
	WriteTimeout time.Duration
	// DrainWindow is the span over which [Manager.Shutdown] spreads its
	// [CodeGoingAway] closes. Defaults to 10s.
	DrainWindow time.Duration
}

// withDefaults is the one place defaults are applied.
func (c Config) withDefaults() Config {
	if c.Shards <= 0 {
		c.Shards = 64
	}
	if c.SendQueue <= 0 {
		c.SendQueue = 64
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 32 << 10
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 25 * time.Second
	}
	if c.PongTimeout <= 0 {
		c.PongTimeout = 10 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.DrainWindow <= 0 {
		c.DrainWindow = 10 * time.Second
	}
	return c
}

// tick is the period of the heartbeat loop: pings are spread over 16 slots of
// the interval, and session expiry is checked at least once a second.
func (c Config) tick() time.Duration {
	return max(min(time.Second, c.PingInterval/16), time.Millisecond)
}
