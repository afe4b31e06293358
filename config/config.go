package config

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"time"

	"github.com/sessiongate/sessiongate/redisconn"
)

// Environments accepted in GATEWAY_ENV.
const (
	EnvDevelopment = "development"
	EnvProduction  = "production"
)

// Authenticator modes accepted in AUTH_MODE.
const (
	AuthModeDev     = "dev"
	AuthModeWebhook = "webhook"
)

// hostPrefix is the cookie name prefix browsers reserve for Secure,
// host-only, Path=/ cookies.
const hostPrefix = "__Host-"

// Config is the gateway's whole configuration. It is a value: [Load] fills
// it from flags and environment with defaults applied; each field names its
// variable and default. It holds secrets: never log it, use
// [Config.LogFields].
type Config struct {
	// Env is "development" or "production" (GATEWAY_ENV). Defaults to development.
	Env string
	// Addr is the listen address (GATEWAY_ADDR). Defaults to ":8080".
	Addr string
	// InstanceID names this instance in the cluster (GATEWAY_INSTANCE_ID).
	// Defaults to the hostname + "-" + 6 random hex characters.
	InstanceID string
	// APIKeys are the server API bearer keys (GATEWAY_API_KEYS, comma-separated).
	// Empty disables the server API.
	APIKeys []string
	// AllowedOrigins are the origins (scheme://host[:port]) allowed to open
	// WebSockets (GATEWAY_ALLOWED_ORIGINS, comma-separated). Empty allows
	// only the request's own host.
	AllowedOrigins []string
	// TrustedProxies are the load balancers in front of the gateway
	// (GATEWAY_TRUSTED_PROXIES, comma-separated CIDRs or IPs). Only when a
	// request's immediate peer is inside them are X-Forwarded-For (the
	// client IP: the right-most entry outside these ranges) and
	// X-Forwarded-Proto (the scheme, for the same-origin check) honoured.
	// Defaults to none: the headers are ignored and the peer is the client.
	// GATEWAY_TRUST_PROXY=true, kept for compatibility and refused in
	// production, stands for the loopback and private ranges
	// ([PrivateProxyRanges]).
	TrustedProxies []netip.Prefix
	// DebugAddr, when set, serves net/http/pprof on this loopback address
	// (GATEWAY_DEBUG_ADDR, e.g. 127.0.0.1:6060), apart from the public
	// listener. Defaults to empty: off.
	DebugAddr string
	// MetricsAddr, when set, serves /metrics on this address of its own
	// (GATEWAY_METRICS_ADDR, e.g. 127.0.0.1:9090 or :9090) and no longer on
	// GATEWAY_ADDR. Defaults to empty: /metrics is served on GATEWAY_ADDR.
	MetricsAddr string
	// DemoEnabled serves the demo page at / (DEMO_ENABLED). Defaults to
	// true in development and false in production, where it may be turned
	// on explicitly.
	DemoEnabled bool
	// AdminEnabled serves the admin console at /admin (ADMIN_ENABLED,
	// docs/ADMIN.md). It needs GATEWAY_API_KEYS (the console's login), and
	// in production GATEWAY_TRUSTED_PROXIES: the gateway listens in plain
	// HTTP, so the console is served only to requests a trusted proxy
	// marks X-Forwarded-Proto: https. Defaults to false.
	AdminEnabled bool
	// AdminSessionLifetime is how long an admin console login lasts
	// (ADMIN_SESSION_LIFETIME, 1m..24h). Defaults to 8h.
	AdminSessionLifetime time.Duration
	// LogLevel is debug, info, warn or error (LOG_LEVEL). Defaults to info.
	LogLevel string
	// LogFormat is console or json (LOG_FORMAT). Defaults to json in
	// production, console in development.
	LogFormat string

	// UseRedis selects the Redis store and bus (USE_REDIS_SESSIONS).
	// Defaults to false: memory store and in-process bus.
	UseRedis bool
	// Redis is the Redis deployment (REDIS_URL, REDIS_HOST, REDIS_PORT,
	// REDIS_PASSWORD, REDIS_DB, REDIS_USERNAME, REDIS_ADDRS,
	// REDIS_MASTER_NAME, REDIS_SENTINEL_ADDRS, REDIS_SENTINEL_USERNAME,
	// REDIS_SENTINEL_PASSWORD, REDIS_CONNECT_ATTEMPTS, REDIS_BACKOFF_MIN,
	// REDIS_BACKOFF_MAX). REDIS_HOST/PORT/DB replace those parts of REDIS_URL,
	// and REDIS_PASSWORD/REDIS_USERNAME its credentials.
	// REDIS_SENTINEL_ADDRS with REDIS_MASTER_NAME fills Addrs (the same as
	// REDIS_ADDRS with REDIS_MASTER_NAME); the sentinel credentials go to
	// SentinelUsername/SentinelPassword.
	Redis redisconn.Config
	// KeyPrefix prefixes every Redis key and channel (REDIS_KEY_PREFIX).
	// Defaults to "sessiongate:".
	KeyPrefix string

	// SessionSecret keys the cookie tags and session handles (SESSION_SECRET,
	// at least 32 bytes in production).
	SessionSecret []byte
	// EncryptionKeys are the 32-byte AES-256-GCM keys (SESSION_ENCRYPTION_KEY,
	// comma-separated 64-hex keys); the first encrypts, all decrypt.
	EncryptionKeys [][]byte
	// EphemeralSecrets is true when development generated a random secret or
	// key because none was given: sessions do not survive a restart.
	EphemeralSecrets bool
	// SessionIdleTTL is the idle timeout, the Redis key TTL
	// (SESSION_IDLE_TTL). Defaults to 24h.
	SessionIdleTTL time.Duration
	// SessionLifetime is the absolute lifetime (SESSION_LIFETIME). Defaults to 168h.
	SessionLifetime time.Duration
	// SessionTouchInterval is the least time between two idle-TTL extensions
	// of one session (SESSION_TOUCH_INTERVAL). Defaults to 1m.
	SessionTouchInterval time.Duration
	// SessionCacheTTL is how long a handshake's session stays in this
	// instance's memory, so a reconnect needs no Redis read
	// (SESSION_CACHE_TTL; 0 turns the cache off). It serves only while the
	// bus is proven live and is invalidated by every revocation event; it
	// must not exceed SESSION_TOUCH_INTERVAL nor the revocation
	// tombstones' lifetime (max(2×RECONCILE_INTERVAL, 1m)). Defaults to 30s,
	// RECONCILE_INTERVAL's default: a session deleted from Redis behind the
	// gateway's back then works as long on a reconnect as on an open
	// connection.
	SessionCacheTTL time.Duration

	// CookieName is the session cookie's base name (COOKIE_NAME). Defaults to
	// "sg_session"; see [Config.EffectiveCookieName].
	CookieName string
	// CookieDomain is the cookie Domain attribute (COOKIE_DOMAIN); must be
	// empty in production because of the __Host- prefix.
	CookieDomain string
	// CookieSameSite is lax, strict or none (COOKIE_SAMESITE). Defaults to lax;
	// none requires CookieSecure.
	CookieSameSite string
	// CookieSecure sets the Secure attribute: always true in production;
	// COOKIE_SECURE=true forces it in development.
	CookieSecure bool

	// AuthMode is dev or webhook (AUTH_MODE). Defaults to dev in development
	// and webhook in production, which refuses dev.
	AuthMode string
	// AuthWebhookURL receives login requests in webhook mode (AUTH_WEBHOOK_URL).
	AuthWebhookURL string
	// AuthWebhookTimeout bounds one webhook call (AUTH_WEBHOOK_TIMEOUT). Defaults to 5s.
	AuthWebhookTimeout time.Duration

	// WSMaxMessageBytes caps one inbound WebSocket message
	// (WS_MAX_MESSAGE_BYTES, 512..16MiB). Defaults to 32768.
	WSMaxMessageBytes int64
	// WSSendQueue is the per-connection outbound queue length (WS_SEND_QUEUE).
	// Defaults to 64.
	WSSendQueue int
	// WSPingInterval is the server ping period (WS_PING_INTERVAL). Defaults to 25s.
	WSPingInterval time.Duration
	// WSPongTimeout is how long a pong may take (WS_PONG_TIMEOUT). Defaults to 10s.
	WSPongTimeout time.Duration
	// WSWriteTimeout bounds one WebSocket write (WS_WRITE_TIMEOUT). Defaults to 10s.
	WSWriteTimeout time.Duration
	// WSMaxConnections caps this instance's WebSocket connections
	// (WS_MAX_CONNECTIONS); a handshake over it gets 503. 0 means no cap,
	// refused in production. Defaults to 100000.
	WSMaxConnections int
	// WSMaxConnectionsPerUser caps one user's connections on this instance
	// (WS_MAX_CONNECTIONS_PER_USER); a handshake over it gets 429. 0 means
	// no cap, refused in production. Defaults to 64.
	WSMaxConnectionsPerUser int
	// WSMaxConnectionsPerSession caps one session's connections on this
	// instance (WS_MAX_CONNECTIONS_PER_SESSION; browser tabs share one
	// session); a handshake over it gets 429. 0 means no cap, refused in
	// production. Defaults to 16.
	WSMaxConnectionsPerSession int
	// WSInboundRate is the sustained rate of messages one connection may
	// send, per second (WS_INBOUND_RATE); over it the connection is closed
	// with 4008. 0 means no limit, refused in production. Defaults to 50.
	WSInboundRate float64
	// WSInboundBurst is how many messages a connection may send at once
	// above WSInboundRate (WS_INBOUND_BURST). Defaults to 100.
	WSInboundBurst int
	// MemoryHeadroom is the room, in percent of the live heap, the Go
	// runtime may allocate before it collects (MEMORY_HEADROOM): a soft
	// memory limit that follows the live heap (at least 16 MiB of room),
	// so an instance holding many idle connections keeps about that much
	// garbage resident instead of a whole GOGC cycle's. The limit is lifted
	// while the process allocates faster than the room lasts (a burst: a
	// static limit doubled a 10k-client resume storm's time), and set again
	// once it is quiet (package internal/memtune). 0 turns it off (the
	// runtime's defaults); a GOMEMLIMIT in the environment also does.
	// Defaults to 25.
	MemoryHeadroom float64

	// HTTPReadTimeout bounds reading one whole request, headers and body,
	// from its first byte (HTTP_READ_TIMEOUT): a client that trickles its
	// body, or sends none, loses its connection after it. Defaults to 10s.
	HTTPReadTimeout time.Duration
	// HTTPWriteTimeout bounds a request from the end of its headers to the
	// end of its response (HTTP_WRITE_TIMEOUT): handler time included, so
	// it must exceed AUTH_WEBHOOK_TIMEOUT. WebSockets are not bound by it
	// (net/http clears the deadlines when the connection is hijacked).
	// Defaults to 15s.
	HTTPWriteTimeout time.Duration
	// HTTPIdleTimeout closes a keep-alive connection idle this long between
	// requests (HTTP_IDLE_TIMEOUT). Defaults to 120s.
	HTTPIdleTimeout time.Duration

	// RateLimitRPS is the per-client-IP rate of logins and upgrades
	// (RATE_LIMIT_RPS). Defaults to 20.
	RateLimitRPS float64
	// RateLimitBurst is the burst of that limiter (RATE_LIMIT_BURST). Defaults to 40.
	RateLimitBurst int

	// DrainWindow spreads connection closes on shutdown (DRAIN_WINDOW).
	// Defaults to 10s.
	DrainWindow time.Duration
	// ShutdownTimeout bounds the whole shutdown (SHUTDOWN_TIMEOUT). Defaults to 30s.
	ShutdownTimeout time.Duration
	// HeartbeatInterval is the instance heartbeat period
	// (PUBSUB_HEARTBEAT_INTERVAL). Defaults to 5s.
	HeartbeatInterval time.Duration
	// PubsubShards is the number of shard channels a user's events travel
	// on with SPUBLISH/SSUBSCRIBE on Redis Cluster (PUBSUB_SHARDS, Redis 7
	// or later): used only when the deployment is a Cluster (several
	// REDIS_ADDRS without REDIS_MASTER_NAME); 0 keeps classic PUBLISH
	// there too. Single Redis and Sentinel always use classic PUBLISH.
	// Defaults to 16; 0 to 1024. See [Config.ShardedPubsub].
	PubsubShards int
	// ReconcileInterval is the period of the revoked-session sweep
	// (RECONCILE_INTERVAL). Defaults to 30s.
	ReconcileInterval time.Duration

	// PresenceEnabled keeps track of which users are online on which
	// instances and serves the presence API (PRESENCE_ENABLED). Defaults
	// to true.
	PresenceEnabled bool
	// PresenceEvents queues presence.online and presence.offline for the
	// application's workers (PRESENCE_EVENTS). Defaults to false.
	PresenceEvents bool
	// PresenceFlushInterval is how often an instance writes its users
	// that changed to Redis (PRESENCE_FLUSH_INTERVAL): presence lags
	// connections by up to this. Defaults to 100ms.
	PresenceFlushInterval time.Duration

	// HistorySize is how many events each history stream (one per user,
	// one broadcast) keeps at least (HISTORY_SIZE). Defaults to 100; 0
	// turns history off (no positions on the wire, nothing to replay).
	HistorySize int
	// HistoryTTL is how long a stream is kept after its last event
	// (HISTORY_TTL). Defaults to 24h; 0 turns history off.
	HistoryTTL time.Duration
	// ResumeMaxEvents bounds the events replayed to one reconnecting
	// connection (RESUME_MAX_EVENTS). Defaults to 1000.
	ResumeMaxEvents int

	// InboundPartitions is how many partitions (Redis Streams) the inbound
	// queue of client messages has; a user's messages all go to one
	// (INBOUND_PARTITIONS). Changing it moves users to other partitions:
	// drain the queue first. Defaults to 16.
	InboundPartitions int
	// InboundMaxLen is how many messages not yet acknowledged one
	// partition holds before new ones are refused with queue_full
	// (INBOUND_MAX_LEN). Defaults to 10000.
	InboundMaxLen int
	// InboundMaxBytes bounds the data of one client message
	// (INBOUND_MAX_BYTES, 1..WS_MAX_MESSAGE_BYTES): a larger one is refused
	// with a too_large error. Defaults to 16384, or WS_MAX_MESSAGE_BYTES if
	// smaller.
	InboundMaxBytes int
	// InboundGroup is the consumer group the application's workers read
	// the inbound queue through (INBOUND_GROUP). Defaults to "app".
	InboundGroup string
	// InboundVisibilityTimeout is how long a message may stay delivered
	// and unacknowledged before another worker may claim it
	// (INBOUND_VISIBILITY_TIMEOUT). Defaults to 30s.
	InboundVisibilityTimeout time.Duration
	// InboundMaxDeliveries is how many times a message is delivered before
	// it goes to the dead letters (INBOUND_MAX_DELIVERIES). Defaults to 5.
	InboundMaxDeliveries int
	// InboundWebhookURL, when set, turns on the built-in forwarder: the
	// gateway POSTs each inbound message, signed, to this http(s) URL and
	// delivers the JSON reply to the sender (INBOUND_WEBHOOK_URL;
	// docs/INBOUND.md). https:// in production unless the host is
	// loopback. Defaults to empty: off.
	InboundWebhookURL string
	// InboundWebhookSecret keys the HMAC-SHA256 X-Sessiongate-Signature
	// header the application verifies (INBOUND_WEBHOOK_SECRET). Required
	// with InboundWebhookURL; at least 32 bytes in production.
	InboundWebhookSecret []byte
	// InboundWebhookTimeout bounds one POST, the response included
	// (INBOUND_WEBHOOK_TIMEOUT). Defaults to 10s.
	InboundWebhookTimeout time.Duration
	// InboundWebhookConcurrency is how many partitions the forwarder
	// handles at once, one message each: the most POSTs in flight from
	// one gateway (INBOUND_WEBHOOK_CONCURRENCY). Defaults to 8.
	InboundWebhookConcurrency int
}

// ShardedPubsub is the number of shard channels the bus and the history
// use: PubsubShards on a Redis Cluster (several REDIS_ADDRS, no
// REDIS_MASTER_NAME), 0 (classic PUBLISH) otherwise.
func (c Config) ShardedPubsub() int {
	if !c.UseRedis || c.Redis.MasterName != "" || len(c.Redis.Addrs) < 2 {
		return 0
	}
	return c.PubsubShards
}

// HistoryOff reports whether HISTORY_SIZE or HISTORY_TTL turns history off.
func (c Config) HistoryOff() bool { return c.HistorySize == 0 || c.HistoryTTL == 0 }

// Production reports whether Env is production.
func (c Config) Production() bool { return c.Env == EnvProduction }

// EffectiveCookieName is the cookie name to set: CookieName with the
// "__Host-" prefix in production (Secure, Path=/, no Domain), CookieName
// otherwise.
func (c Config) EffectiveCookieName() string {
	if c.Production() {
		return hostPrefix + c.CookieName
	}
	return c.CookieName
}

// UsesExampleSecrets reports whether SessionSecret or any EncryptionKeys
// entry is the example from .env.example. Production refuses it; a
// development main should warn.
func (c Config) UsesExampleSecrets() bool {
	if string(c.SessionSecret) == ExampleSessionSecret {
		return true
	}
	ex, _ := hex.DecodeString(ExampleEncryptionKey)
	for _, k := range c.EncryptionKeys {
		if bytes.Equal(k, ex) {
			return true
		}
	}
	return false
}
