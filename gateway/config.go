package gateway

import (
	"net/netip"
	"time"

	"github.com/sessiongate/sessiongate/connmgr"
	"github.com/sessiongate/sessiongate/history"
)

// Config is what a [Server] needs to know. It is a value; zero fields take
// the defaults documented on them, applied in one place ([Config.withDefaults]).
// [ConfigFrom] maps the process configuration onto it.
type Config struct {
	// InstanceID names this instance in welcomes, events, heartbeats and
	// /readyz. Defaults to "gateway".
	InstanceID string
	// Addr is the address this instance advertises in its heartbeats.
	Addr string
	// APIKeys are the server API bearer keys; empty disables the server API.
	APIKeys []string
	// AllowedOrigins are the browser origins allowed to act on the gateway;
	// empty allows only the request's own origin.
	AllowedOrigins []string
	// TrustedProxies are the peers whose X-Forwarded-For and
	// X-Forwarded-Proto are believed. Empty trusts no one.
	TrustedProxies []netip.Prefix
	// DemoEnabled serves the demo page at "/".
	DemoEnabled bool
	// MetricsElsewhere means /metrics is served by a listener of its own
	// (GATEWAY_METRICS_ADDR), so the main port answers it with 404.
	MetricsElsewhere bool

	// Cookie is the session cookie's attributes.
	Cookie CookieConfig

	// RateLimitRPS is the per-client-IP rate of logins and upgrades; zero
	// turns the limit off. RateLimitBurst is its burst.
	RateLimitRPS   float64
	RateLimitBurst int

	// HTTPReadTimeout bounds reading one request, headers and body.
	// Defaults to 10s.
	HTTPReadTimeout time.Duration
	// HTTPWriteTimeout bounds writing one response. Defaults to 15s.
	HTTPWriteTimeout time.Duration
	// HTTPIdleTimeout closes idle keep-alive connections. Defaults to 120s.
	HTTPIdleTimeout time.Duration
	// ShutdownTimeout bounds the whole drain and shutdown. Defaults to 30s.
	ShutdownTimeout time.Duration

	// HeartbeatInterval is the instance heartbeat period. Defaults to
	// pubsub's (5s).
	HeartbeatInterval time.Duration
	// ReconcileInterval is the period of the revoked-session sweep.
	// Defaults to revocation's (30s).
	ReconcileInterval time.Duration
	// SessionCacheTTL keeps handshakes' sessions in memory (package
	// sessioncache) for this long; 0, the default, reads the store on
	// every handshake. It must not exceed the revocation tombstones'
	// lifetime nor the store's touch interval (the config package checks).
	SessionCacheTTL time.Duration

	// EventChannel is the bus's pub/sub channel, on which the history
	// publishes each event as it stores it. Defaults to
	// "sessiongate:events".
	EventChannel string
	// HistoryOff turns positions off: no offsets on frames, none in the
	// welcome or publish responses (HISTORY_SIZE=0 or HISTORY_TTL=0).
	// Events still go through the history, which then only publishes.
	HistoryOff bool
	// HistorySize is how many events a stream keeps at least: the history
	// API's "latest events" read asks for at most this many. Defaults to
	// history's (100).
	HistorySize int
	// HistoryTTL is how long the history keeps a stream after its last
	// event (HISTORY_TTL): for half of it after an event, a new
	// connection takes the stream's position from what the bus delivered
	// here instead of reading it. Defaults to history's (24h).
	HistoryTTL time.Duration
	// ResumeMaxEvents bounds the events replayed to one reconnecting
	// client per stream (RESUME_MAX_EVENTS): a client that missed more is
	// told it was not recovered. Defaults to 1000.
	ResumeMaxEvents int
	// PresenceEvents queues presence.online and presence.offline for the
	// application (PRESENCE_EVENTS); needs Deps.Presence.
	PresenceEvents bool
	// PresenceFlushInterval is how often this instance writes its users
	// that changed to the presence store. Defaults to presence's (100ms).
	PresenceFlushInterval time.Duration
	// InboundMaxBytes bounds the data of one client message
	// (INBOUND_MAX_BYTES): larger ones get a too_large error. Defaults to
	// 16384.
	InboundMaxBytes int

	// Admin configures the admin console (docs/ADMIN.md).
	Admin AdminConfig

	// Conn configures the connection manager; its InstanceID is set from
	// InstanceID. Its zero fields take connmgr's defaults.
	Conn connmgr.Config
}

// CookieConfig is the session cookie's name and attributes.
type CookieConfig struct {
	// Name is the cookie's full name, prefix included (production uses
	// "__Host-sg_session"). Defaults to "sg_session".
	Name string
	// Domain is the Domain attribute; empty for a host-only cookie.
	Domain string
	// SameSite is lax, strict or none. Defaults to lax.
	SameSite string
	// Secure sets the Secure attribute.
	Secure bool
}

// AdminConfig configures the admin console at /admin.
type AdminConfig struct {
	// Enabled serves the console and its /admin/api routes; off, /admin
	// is a 404 like any unknown path.
	Enabled bool
	// RequireTLS refuses every /admin request that did not come over
	// HTTPS (TLS on the connection, or X-Forwarded-Proto: https from a
	// trusted proxy) with a 403. Production sets it.
	RequireTLS bool
	// SessionLifetime bounds one admin login. Defaults to 8h.
	SessionLifetime time.Duration
	// KeyPrefix prefixes the Redis keys of admin sessions. Defaults to
	// "sessiongate:".
	KeyPrefix string
}

// withDefaults is the one place the gateway's defaults are applied.
func (c Config) withDefaults() Config {
	if c.InstanceID == "" {
		c.InstanceID = "gateway"
	}
	if c.Cookie.Name == "" {
		c.Cookie.Name = "sg_session"
	}
	if c.Cookie.SameSite == "" {
		c.Cookie.SameSite = "lax"
	}
	if c.HTTPReadTimeout <= 0 {
		c.HTTPReadTimeout = 10 * time.Second
	}
	if c.HTTPWriteTimeout <= 0 {
		c.HTTPWriteTimeout = 15 * time.Second
	}
	if c.HTTPIdleTimeout <= 0 {
		c.HTTPIdleTimeout = 120 * time.Second
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 30 * time.Second
	}
	if c.EventChannel == "" {
		c.EventChannel = "sessiongate:events"
	}
	if c.HistorySize <= 0 {
		c.HistorySize = history.DefaultSize
	}
	if c.HistoryTTL <= 0 {
		c.HistoryTTL = history.DefaultTTL
	}
	if c.ResumeMaxEvents <= 0 {
		c.ResumeMaxEvents = 1000
	}
	if c.InboundMaxBytes <= 0 {
		c.InboundMaxBytes = 16 << 10
	}
	if c.Admin.SessionLifetime <= 0 {
		c.Admin.SessionLifetime = 8 * time.Hour
	}
	if c.Admin.KeyPrefix == "" {
		c.Admin.KeyPrefix = "sessiongate:"
	}
	c.Conn.InstanceID = c.InstanceID
	return c
}
