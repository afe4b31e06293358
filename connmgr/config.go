package connmgr

import (
	"math"
	"time"
)

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

	// MaxConnections caps the connections registered on this manager; a
	// registration over it fails with [ErrInstanceFull]. Defaults to 0:
	// no cap.
	MaxConnections int
	// MaxConnectionsPerUser caps the connections of one [Info.UserID] on
	// this manager; over it, registration fails with [ErrUserLimit].
	// Defaults to 0: no cap.
	MaxConnectionsPerUser int
	// MaxConnectionsPerSession caps the connections of one [Info.Handle] on
	// this manager; over it, registration fails with [ErrSessionLimit].
	// Defaults to 0: no cap.
	MaxConnectionsPerSession int
	// InboundRate is the sustained number of messages per second one
	// connection may send (pongs included); a connection over it is closed
	// with [CodeRateLimited]. Defaults to 0: no limit.
	InboundRate float64
	// InboundBurst is how many messages a connection may send at once above
	// InboundRate. Defaults to twice InboundRate, at least 1.
	InboundBurst int
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
	c.MaxConnections = max(c.MaxConnections, 0)
	c.MaxConnectionsPerUser = max(c.MaxConnectionsPerUser, 0)
	c.MaxConnectionsPerSession = max(c.MaxConnectionsPerSession, 0)
	if !(c.InboundRate > 0) || math.IsInf(c.InboundRate, 1) {
		c.InboundRate = 0 // also NaN and +Inf: no limit
	}
	if c.InboundRate > 0 && c.InboundBurst <= 0 {
		c.InboundBurst = max(int(math.Ceil(2*c.InboundRate)), 1)
	}
	return c
}

// inboundLimit converts InboundRate and InboundBurst to the GCRA's integer
// form: interval is the manager-clock time one message costs, tolerance how
// far ahead of now a connection's budget may run. interval 0 means no limit.
func (c Config) inboundLimit() (interval, tolerance int64) {
	if c.InboundRate <= 0 {
		return 0, 0
	}
	// Clamped so that neither a tiny rate nor a huge burst can overflow the
	// budget arithmetic: at most one message a year, a budget of 2^62 ns.
	const year, most = int64(365 * 24 * time.Hour), int64(1) << 62
	interval = min(max(int64(float64(time.Second)/c.InboundRate), 1), year)
	if n := int64(c.InboundBurst - 1); n > most/interval {
		return interval, most
	}
	return interval, int64(c.InboundBurst-1) * interval
}

// tick is the period of the heartbeat loop: pings are spread over 16 slots of
// the interval, and session expiry is checked at least once a second.
func (c Config) tick() time.Duration {
	return max(min(time.Second, c.PingInterval/16), time.Millisecond)
}
