package config

import "strings"

// variable is one setting: its environment name, the default as text ("" when
// it has none or it depends on other settings, see defText), a one-line
// meaning, and its group in [Usage] and .env.example.
type variable struct {
	name    string
	def     string
	defText string // shown instead of def when the default is computed
	help    string
	group   string
	isBool  bool
	secret  bool // never echoed in error messages
}

// flagName is the flag of an environment variable: REDIS_URL -> redis-url.
func flagName(env string) string {
	return strings.ReplaceAll(strings.ToLower(env), "_", "-")
}

// variables lists every setting in display order. It returns a fresh slice:
// the package keeps no mutable state.
func variables() []variable {
	return []variable{
		{group: "Gateway", name: "GATEWAY_ENV", def: EnvDevelopment, help: "development or production (production enforces secure settings)"},
		{group: "Gateway", name: "GATEWAY_ADDR", def: ":8080", help: "listen address, host:port or :port"},
		{group: "Gateway", name: "GATEWAY_INSTANCE_ID", defText: "hostname-<6 random hex>", help: "name of this instance in the cluster view"},
		{group: "Gateway", name: "GATEWAY_API_KEYS", secret: true, defText: "(none: server API disabled)", help: "comma-separated bearer keys for /api/v1 (at least 16 characters each in production)"},
		{group: "Gateway", name: "GATEWAY_ALLOWED_ORIGINS", defText: "(none: same origin as the request only)", help: "comma-separated origins allowed to open WebSockets, e.g. https://app.example.com"},
		{group: "Gateway", name: "GATEWAY_TRUSTED_PROXIES", defText: "(none: X-Forwarded-* ignored)", help: "comma-separated CIDRs or IPs of the load balancers; only from these peers are X-Forwarded-For (client IP) and X-Forwarded-Proto honoured"},
		{group: "Gateway", name: "GATEWAY_TRUST_PROXY", def: "false", isBool: true, help: "deprecated: true trusts the loopback and private ranges as proxies (development only; set GATEWAY_TRUSTED_PROXIES instead)"},
		{group: "Gateway", name: "GATEWAY_METRICS_ADDR", defText: "(none: /metrics on GATEWAY_ADDR)", help: "host:port or :port serving /metrics apart from the public listener (e.g. 127.0.0.1:9090); set, /metrics is no longer on GATEWAY_ADDR"},
		{group: "Gateway", name: "GATEWAY_DEBUG_ADDR", defText: "none (off)", help: "loopback host:port serving net/http/pprof for profiling (e.g. 127.0.0.1:6060); empty: off"},
		{group: "Gateway", name: "DEMO_ENABLED", defText: "true in development, false in production", isBool: true, help: "serve the demo page at /"},
		{group: "Admin", name: "ADMIN_ENABLED", def: "false", isBool: true, help: "serve the admin console at /admin (login with a GATEWAY_API_KEYS key; production: only over HTTPS through GATEWAY_TRUSTED_PROXIES); see docs/ADMIN.md"},
		{group: "Admin", name: "ADMIN_SESSION_LIFETIME", def: "8h", help: "how long an admin console login lasts (1m..24h)"},
		{group: "Logging", name: "LOG_LEVEL", def: "info", help: "debug, info, warn or error"},
		{group: "Logging", name: "LOG_FORMAT", defText: "json in production, console in development", help: "console or json"},
		{group: "Redis", name: "USE_REDIS_SESSIONS", def: "false", isBool: true, help: "true: Redis sessions and pub/sub; false: memory store, single instance"},
		{group: "Redis", name: "REDIS_URL", def: "redis://localhost:6379", secret: true, help: "redis:// or rediss:// (TLS) URL of a single Redis"},
		{group: "Redis", name: "REDIS_HOST", defText: "(from REDIS_URL)", help: "replaces the host of REDIS_URL"},
		{group: "Redis", name: "REDIS_PORT", defText: "(from REDIS_URL)", help: "replaces the port of REDIS_URL"},
		{group: "Redis", name: "REDIS_USERNAME", defText: "(from REDIS_URL)", help: "ACL user name; replaces the one in REDIS_URL"},
		{group: "Redis", name: "REDIS_PASSWORD", secret: true, defText: "(from REDIS_URL)", help: "password; replaces the one in REDIS_URL"},
		{group: "Redis", name: "REDIS_DB", defText: "(from REDIS_URL, else 0)", help: "database number; replaces the one in REDIS_URL (Cluster: 0 only)"},
		{group: "Redis", name: "REDIS_ADDRS", defText: "(none: use REDIS_URL)", help: "comma-separated host:port list: several = Redis Cluster; with REDIS_MASTER_NAME = Sentinels"},
		{group: "Redis", name: "REDIS_MASTER_NAME", defText: "(none)", help: "Sentinel master name (needs REDIS_SENTINEL_ADDRS, or REDIS_ADDRS)"},
		{group: "Redis", name: "REDIS_SENTINEL_ADDRS", defText: "(none)", help: "comma-separated Sentinel host:port list (needs REDIS_MASTER_NAME; do not also set REDIS_ADDRS)"},
		{group: "Redis", name: "REDIS_SENTINEL_USERNAME", defText: "(none)", help: "ACL user name on the sentinels, when they have their own auth (Sentinel only)"},
		{group: "Redis", name: "REDIS_SENTINEL_PASSWORD", secret: true, defText: "(none)", help: "the sentinels' own password (their requirepass or ACL user), not the data nodes' REDIS_PASSWORD (Sentinel only)"},
		{group: "Redis", name: "REDIS_CONNECT_ATTEMPTS", def: "10", help: "PINGs tried at start before giving up (then: dev falls back to memory, production exits)"},
		{group: "Redis", name: "REDIS_BACKOFF_MIN", def: "1s", help: "first delay between connection attempts (doubles each time)"},
		{group: "Redis", name: "REDIS_BACKOFF_MAX", def: "10s", help: "longest delay between connection attempts"},
		{group: "Redis", name: "REDIS_KEY_PREFIX", def: "sessiongate:", help: "prefix of every Redis key and channel"},
		{group: "Sessions", name: "SESSION_SECRET", secret: true, defText: "(development: random per start; production: required)", help: "HMAC secret for cookies and handles, at least 32 bytes"},
		{group: "Sessions", name: "SESSION_ENCRYPTION_KEY", secret: true, defText: "(development: random per start; production: required)", help: "comma-separated 64-hex (32-byte) AES-256-GCM keys; the first encrypts, all decrypt"},
		{group: "Sessions", name: "SESSION_IDLE_TTL", def: "24h", help: "a session unused this long expires"},
		{group: "Sessions", name: "SESSION_LIFETIME", def: "168h", help: "absolute lifetime of a session, whatever its use"},
		{group: "Sessions", name: "SESSION_TOUCH_INTERVAL", def: "1m", help: "least time between two idle-TTL extensions of one session"},
		{group: "Sessions", name: "SESSION_CACHE_TTL", def: "30s", help: "how long a handshake's session is kept in memory for reconnects (0 = off; at most SESSION_TOUCH_INTERVAL and the tombstone lifetime)"},
		{group: "Cookies", name: "COOKIE_NAME", def: "sg_session", help: "session cookie name (production adds the __Host- prefix)"},
		{group: "Cookies", name: "COOKIE_DOMAIN", defText: "(none: host-only)", help: "cookie Domain attribute (must be empty in production)"},
		{group: "Cookies", name: "COOKIE_SAMESITE", def: "lax", help: "lax, strict or none (none needs Secure)"},
		{group: "Cookies", name: "COOKIE_SECURE", defText: "true in production, false in development", isBool: true, help: "set the Secure attribute (true forces it in development)"},
		{group: "Auth", name: "AUTH_MODE", defText: "dev in development, webhook in production", help: "dev (any user id, development only) or webhook"},
		{group: "Auth", name: "AUTH_WEBHOOK_URL", secret: true, defText: "(none)", help: "URL that checks login requests in webhook mode: https:// in production, http:// allowed in development; redirects are not followed"},
		{group: "Auth", name: "AUTH_WEBHOOK_TIMEOUT", def: "5s", help: "timeout of one webhook call"},
		{group: "WebSocket", name: "WS_MAX_MESSAGE_BYTES", def: "32768", help: "largest inbound message in bytes (512..16777216)"},
		{group: "WebSocket", name: "WS_SEND_QUEUE", def: "64", help: "outbound messages queued per connection before it is closed as a slow consumer"},
		{group: "WebSocket", name: "WS_PING_INTERVAL", def: "25s", help: "how often the server pings each connection"},
		{group: "WebSocket", name: "WS_PONG_TIMEOUT", def: "10s", help: "how long a pong may take before the connection is closed"},
		{group: "WebSocket", name: "WS_WRITE_TIMEOUT", def: "10s", help: "deadline of one WebSocket write"},
		{group: "HTTP", name: "HTTP_READ_TIMEOUT", def: "10s", help: "limit to receive one whole request, headers and body (slow or stalled bodies lose the connection); at most 5m"},
		{group: "HTTP", name: "HTTP_WRITE_TIMEOUT", def: "15s", help: "limit from the end of a request's headers to the end of its response; longer than AUTH_WEBHOOK_TIMEOUT, at most 5m (WebSockets are not bound by it)"},
		{group: "HTTP", name: "HTTP_IDLE_TIMEOUT", def: "120s", help: "an idle keep-alive connection is closed after this long; at most 1h"},
		{group: "Limits", name: "RATE_LIMIT_RPS", def: "20", help: "logins and upgrades per second per client IP; 0 turns the limit off (benchmarks)"},
		{group: "Limits", name: "RATE_LIMIT_BURST", def: "40", help: "burst allowed above RATE_LIMIT_RPS"},
		{group: "Limits", name: "WS_MAX_CONNECTIONS", def: "100000", help: "WebSocket connections on this instance; over it a handshake gets 503 (0: no cap, refused in production)"},
		{group: "Limits", name: "WS_MAX_CONNECTIONS_PER_USER", def: "64", help: "connections of one user on this instance; over it a handshake gets 429 (0: no cap, refused in production)"},
		{group: "Limits", name: "WS_MAX_CONNECTIONS_PER_SESSION", def: "16", help: "connections of one session (browser tabs share it) on this instance; over it 429 (0: no cap, refused in production)"},
		{group: "Limits", name: "WS_INBOUND_RATE", def: "50", help: "messages per second one connection may send; over it the connection closes with 4008 (0: no limit, refused in production)"},
		{group: "Limits", name: "MEMORY_HEADROOM", def: "25", help: "room the Go runtime may allocate before it collects, in percent of the live heap (at least 16 MiB): a soft memory limit following the live heap, so idle connections do not keep a burst's garbage resident; lifted while the process allocates faster than that room lasts (a reconnect storm), set again once it is quiet; 0 = off, the runtime's defaults (GOMEMLIMIT set also turns it off)"},
		{group: "Limits", name: "WS_INBOUND_BURST", def: "100", help: "messages a connection may send at once above WS_INBOUND_RATE"},
		{group: "Lifecycle", name: "DRAIN_WINDOW", def: "10s", help: "on SIGTERM, connections close spread over this window"},
		{group: "Lifecycle", name: "SHUTDOWN_TIMEOUT", def: "30s", help: "hard limit for the whole shutdown (longer than DRAIN_WINDOW)"},
		{group: "Lifecycle", name: "PUBSUB_HEARTBEAT_INTERVAL", def: "5s", help: "instance heartbeat period (an instance missing 3 is gone)"},
		{group: "Lifecycle", name: "PUBSUB_SHARDS", def: "16", help: "Redis Cluster only (several REDIS_ADDRS, no REDIS_MASTER_NAME; Redis 7+): user events go over this many shard channels with SPUBLISH; 0 keeps classic PUBLISH (0..1024; changing it starts new user histories)"},
		{group: "Lifecycle", name: "RECONCILE_INTERVAL", def: "30s", help: "sweep closing connections of revoked sessions (bounds revocation delay if pub/sub is lost)"},
		{group: "Presence", name: "PRESENCE_ENABLED", def: "true", isBool: true, help: "keep track of which users are online on which instances and serve the presence API"},
		{group: "Presence", name: "PRESENCE_EVENTS", def: "false", isBool: true, help: "queue presence.online / presence.offline for the application's workers (inbound queue, system messages)"},
		{group: "Presence", name: "PRESENCE_FLUSH_INTERVAL", def: "100ms", help: "how often an instance writes its users that changed (presence lags connections by up to this; 10ms..10s)"},
		{group: "History", name: "HISTORY_SIZE", def: "100", help: "events kept per stream (one per user, one broadcast) for positions and replay; 0 turns history off (at most 100000)"},
		{group: "History", name: "HISTORY_TTL", def: "24h", help: "a stream is dropped this long after its last event (for half of it, new connections take its position from the bus, no read); 0 turns history off (otherwise at least 1s)"},
		{group: "History", name: "RESUME_MAX_EVENTS", def: "1000", help: "most events replayed to one reconnecting connection (1..100000)"},
		{group: "Inbound", name: "INBOUND_PARTITIONS", def: "16", help: "partitions (Redis Streams) of the queue of client messages; a user's messages keep their order in one (1..1024; drain the queue before changing it)"},
		{group: "Inbound", name: "INBOUND_MAX_BYTES", defText: "16384, or WS_MAX_MESSAGE_BYTES if smaller", help: "largest data of one client message, in bytes; larger ones are refused with too_large (1..WS_MAX_MESSAGE_BYTES)"},
		{group: "Inbound", name: "INBOUND_MAX_LEN", def: "10000", help: "messages not yet acknowledged one partition holds; over it sends are refused with queue_full (1..10000000)"},
		{group: "Inbound", name: "INBOUND_GROUP", def: "app", help: "consumer group the application's workers read through (1-64 letters, digits, '.', '_', ':' or '-')"},
		{group: "Inbound", name: "INBOUND_VISIBILITY_TIMEOUT", def: "30s", help: "a delivered message not acknowledged this long may be claimed by another worker (1s..1h)"},
		{group: "Inbound", name: "INBOUND_MAX_DELIVERIES", def: "5", help: "deliveries of a message before it goes to the dead letters (1..100)"},
		{group: "Inbound", name: "INBOUND_WEBHOOK_URL", secret: true, defText: "(none: off)", help: "URL the gateway POSTs each client message to, signed, delivering the JSON reply to the sender (https:// in production unless the host is loopback; redirects are not followed)"},
		{group: "Inbound", name: "INBOUND_WEBHOOK_SECRET", secret: true, defText: "(none; required with INBOUND_WEBHOOK_URL)", help: "HMAC-SHA256 key of the X-Sessiongate-Signature header the application verifies (at least 32 bytes in production)"},
		{group: "Inbound", name: "INBOUND_WEBHOOK_TIMEOUT", def: "10s", help: "timeout of one POST to INBOUND_WEBHOOK_URL, response included (at most 5m); a timeout is retried"},
		{group: "Inbound", name: "INBOUND_WEBHOOK_CONCURRENCY", def: "8", help: "POSTs in flight at once from one gateway, one per partition (1..1024)"},
	}
}
