package config

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strings"
	"time"
)

// Limits enforced by [Config.Validate].
const (
	minSecretBytes    = 32
	minAPIKeyChars    = 16
	minMessageBytes   = 512
	maxMessageBytes   = 16 << 20
	maxSendQueue      = 1 << 16
	maxConnections    = 10_000_000
	maxInboundRate    = 1_000_000
	maxInstanceIDLen  = 64
	maxCookieNameLen  = 64
	encryptionKeySize = 32
	// maxHTTPTimeout caps HTTP_READ_TIMEOUT and HTTP_WRITE_TIMEOUT: beyond
	// it, one slow client holds a connection and a goroutine for minutes.
	maxHTTPTimeout = 5 * time.Minute
	maxIdleTimeout = time.Hour
)

// Validate checks every rule and returns nil or an error that wraps
// [ErrInvalid] followed by one line per problem, each naming the variable
// and what it should be. [Load] calls it; call it again after changing a
// loaded Config by hand.
func (c Config) Validate() error {
	p := c.problems()
	if len(p) == 0 {
		return nil
	}
	return errors.Join(append([]error{ErrInvalid}, p...)...)
}

func (c Config) problems() []error {
	var out []error
	add := func(format string, args ...any) { out = append(out, fmt.Errorf(format, args...)) }

	if c.Env != EnvDevelopment && c.Env != EnvProduction {
		add("GATEWAY_ENV must be %q or %q; got %q", EnvDevelopment, EnvProduction, clip(c.Env))
	}
	if c.DebugAddr != "" {
		host, port, err := net.SplitHostPort(c.DebugAddr)
		ip := net.ParseIP(host)
		if err != nil || !validPort(port, true) || !(host == "localhost" || (ip != nil && ip.IsLoopback())) {
			add("GATEWAY_DEBUG_ADDR must be a loopback host:port such as 127.0.0.1:6060 (profiles must never be public); got %q", clip(c.DebugAddr))
		}
	}
	if _, port, err := net.SplitHostPort(c.Addr); err != nil || !validPort(port, true) {
		add("GATEWAY_ADDR must be host:port or :port, e.g. \":8080\"; got %q", clip(c.Addr))
	}
	if c.MetricsAddr != "" {
		if _, port, err := net.SplitHostPort(c.MetricsAddr); err != nil || !validPort(port, true) {
			add("GATEWAY_METRICS_ADDR must be host:port or :port, e.g. \"127.0.0.1:9090\"; got %q", clip(c.MetricsAddr))
		}
	}
	for _, p := range c.TrustedProxies {
		if c.Production() && p.Bits() == 0 {
			add("GATEWAY_TRUSTED_PROXIES must not contain %s in production: it trusts X-Forwarded-For from every address, so any client could choose its own IP; list the load balancers' addresses", p)
		}
	}
	if c.InstanceID == "" || len(c.InstanceID) > maxInstanceIDLen || strings.IndexFunc(c.InstanceID, func(r rune) bool { return !validIDRune(r) }) >= 0 {
		add("GATEWAY_INSTANCE_ID must be 1-%d characters of letters, digits, '.', '_', ':' or '-'; got %q", maxInstanceIDLen, clip(c.InstanceID))
	}
	c.apiKeyProblems(add)
	for i, o := range c.AllowedOrigins {
		if !validOrigin(o) {
			add("GATEWAY_ALLOWED_ORIGINS entry %d must be an origin scheme://host[:port] such as https://app.example.com (no path, no trailing slash); got %q", i+1, clip(o))
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		add("LOG_LEVEL must be debug, info, warn or error; got %q", clip(c.LogLevel))
	}
	if c.LogFormat != "console" && c.LogFormat != "json" {
		add("LOG_FORMAT must be console or json; got %q", clip(c.LogFormat))
	}
	c.redisProblems(add)
	c.secretProblems(add)
	c.sessionProblems(add)
	c.cookieProblems(add)
	c.authProblems(add)
	c.wsProblems(add)
	c.httpProblems(add)
	if !(c.MemoryHeadroom >= 0 && c.MemoryHeadroom <= 1000) {
		add("MEMORY_HEADROOM must be a percentage between 0 (off) and 1000; got %v", c.MemoryHeadroom)
	}
	if c.RateLimitRPS < 0 || math.IsNaN(c.RateLimitRPS) || math.IsInf(c.RateLimitRPS, 0) {
		add("RATE_LIMIT_RPS must be a positive number, or 0 to turn the limit off; got %v", c.RateLimitRPS)
	}
	if c.RateLimitBurst < 1 {
		add("RATE_LIMIT_BURST must be at least 1; got %d", c.RateLimitBurst)
	}
	positive(add, "DRAIN_WINDOW", c.DrainWindow)
	positive(add, "SHUTDOWN_TIMEOUT", c.ShutdownTimeout)
	if c.DrainWindow > 0 && c.ShutdownTimeout > 0 && c.DrainWindow >= c.ShutdownTimeout {
		add("DRAIN_WINDOW (%s) must be shorter than SHUTDOWN_TIMEOUT (%s), or shutdown is cut off mid-drain", c.DrainWindow, c.ShutdownTimeout)
	}
	positive(add, "PUBSUB_HEARTBEAT_INTERVAL", c.HeartbeatInterval)
	positive(add, "RECONCILE_INTERVAL", c.ReconcileInterval)
	if c.PresenceFlushInterval < 10*time.Millisecond || c.PresenceFlushInterval > 10*time.Second {
		add("PRESENCE_FLUSH_INTERVAL must be between 10ms and 10s; got %s", c.PresenceFlushInterval)
	}
	if c.PresenceEvents && !c.PresenceEnabled {
		add("PRESENCE_EVENTS=true needs PRESENCE_ENABLED=true")
	}
	c.historyProblems(add)
	c.inboundProblems(add)
	c.inboundWebhookProblems(add)
	c.adminProblems(add)
	return out
}

// maxHistory bounds HISTORY_SIZE and RESUME_MAX_EVENTS: every user's
// stream may hold HISTORY_SIZE events (Redis memory), and one resume may
// send RESUME_MAX_EVENTS frames at once.
const maxHistory = 100_000

// maxPubsubShards bounds PUBSUB_SHARDS: every instance holds one
// subscription connection per shard channel.
const maxPubsubShards = 1024

func (c Config) historyProblems(add func(string, ...any)) {
	if c.PubsubShards < 0 || c.PubsubShards > maxPubsubShards {
		add("PUBSUB_SHARDS must be between 0 (classic PUBLISH) and %d; got %d", maxPubsubShards, c.PubsubShards)
	}
	if c.HistorySize < 0 || c.HistorySize > maxHistory {
		add("HISTORY_SIZE must be between 0 (history off) and %d; got %d", maxHistory, c.HistorySize)
	}
	if c.HistoryTTL != 0 && c.HistoryTTL < time.Second {
		add("HISTORY_TTL must be 0 (history off) or at least 1s; got %s", c.HistoryTTL)
	}
	if c.ResumeMaxEvents < 1 || c.ResumeMaxEvents > maxHistory {
		add("RESUME_MAX_EVENTS must be between 1 and %d; got %d", maxHistory, c.ResumeMaxEvents)
	}
}

// Bounds of the INBOUND_* variables. More partitions than maxPartitions
// only multiply every worker's reads; a longer partition or more
// deliveries only hide a stuck consumer; a visibility timeout under a
// second redelivers healthy slow handlers, over an hour leaves a dead
// worker's messages stranded.
const (
	maxInboundPartitions = 1024
	// defaultInboundMaxBytes is INBOUND_MAX_BYTES when unset (and the
	// frame limit allows it).
	defaultInboundMaxBytes = 16 << 10
	maxInboundLen          = 10_000_000
	maxInboundDeliveries   = 100
	minInboundVisibility   = time.Second
	maxInboundVisibility   = time.Hour
	maxInboundGroupLength  = 64
)

func (c Config) inboundProblems(add func(string, ...any)) {
	if c.InboundPartitions < 1 || c.InboundPartitions > maxInboundPartitions {
		add("INBOUND_PARTITIONS must be between 1 and %d; got %d", maxInboundPartitions, c.InboundPartitions)
	}
	if c.InboundMaxLen < 1 || c.InboundMaxLen > maxInboundLen {
		add("INBOUND_MAX_LEN must be between 1 and %d; got %d", maxInboundLen, c.InboundMaxLen)
	}
	if c.InboundMaxBytes < 1 || int64(c.InboundMaxBytes) > c.WSMaxMessageBytes {
		add("INBOUND_MAX_BYTES must be between 1 and WS_MAX_MESSAGE_BYTES (%d); got %d", c.WSMaxMessageBytes, c.InboundMaxBytes)
	}
	if c.InboundGroup == "" || len(c.InboundGroup) > maxInboundGroupLength || strings.IndexFunc(c.InboundGroup, func(r rune) bool { return !validIDRune(r) }) >= 0 {
		add("INBOUND_GROUP must be 1-%d characters of letters, digits, '.', '_', ':' or '-'; got %q", maxInboundGroupLength, clip(c.InboundGroup))
	}
	if c.InboundVisibilityTimeout < minInboundVisibility || c.InboundVisibilityTimeout > maxInboundVisibility {
		add("INBOUND_VISIBILITY_TIMEOUT must be between %s and %s; got %s", minInboundVisibility, maxInboundVisibility, c.InboundVisibilityTimeout)
	}
	if c.InboundMaxDeliveries < 1 || c.InboundMaxDeliveries > maxInboundDeliveries {
		add("INBOUND_MAX_DELIVERIES must be between 1 and %d; got %d", maxInboundDeliveries, c.InboundMaxDeliveries)
	}
}

// Bounds of the INBOUND_WEBHOOK_* variables: more POSTs in flight than
// partitions never run (a worker handles one message per partition).
const maxInboundWebhookConcurrency = maxInboundPartitions

// inboundWebhookProblems checks the forwarder's settings. Its URL receives
// users' messages, signed: production requires TLS unless the application
// is on the same host, and a secret long enough not to be guessed.
func (c Config) inboundWebhookProblems(add func(string, ...any)) {
	if c.InboundWebhookTimeout <= 0 || c.InboundWebhookTimeout > maxHTTPTimeout {
		add("INBOUND_WEBHOOK_TIMEOUT must be a positive duration of at most %s; got %s", maxHTTPTimeout, c.InboundWebhookTimeout)
	}
	if c.InboundWebhookConcurrency < 1 || c.InboundWebhookConcurrency > maxInboundWebhookConcurrency {
		add("INBOUND_WEBHOOK_CONCURRENCY must be between 1 and %d; got %d", maxInboundWebhookConcurrency, c.InboundWebhookConcurrency)
	}
	if c.InboundWebhookURL == "" {
		return
	}
	// The URL and the secret are never quoted: the URL may carry credentials.
	if u, err := url.Parse(c.InboundWebhookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		add("INBOUND_WEBHOOK_URL must be an http:// or https:// URL with a host")
	} else if c.Production() && u.Scheme != "https" && !loopbackHost(u.Hostname()) {
		add("INBOUND_WEBHOOK_URL must be an https:// URL in production unless its host is loopback (127.0.0.1, ::1, localhost): it carries users' messages")
	}
	switch s := c.InboundWebhookSecret; {
	case len(s) == 0:
		add("INBOUND_WEBHOOK_SECRET is required with INBOUND_WEBHOOK_URL: the application verifies each request's signature with it; generate one with: openssl rand -hex 32")
	case bytes.Equal(s, c.SessionSecret):
		add("INBOUND_WEBHOOK_SECRET must differ from SESSION_SECRET: the application holds it, and SESSION_SECRET signs the session cookies")
	case c.Production() && len(s) < minSecretBytes:
		add("INBOUND_WEBHOOK_SECRET must be at least %d bytes in production; got %d (generate one with: openssl rand -hex 32)", minSecretBytes, len(s))
	}
}

// loopbackHost reports whether host (a URL's hostname) is this machine.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func positive(add func(string, ...any), name string, d time.Duration) {
	if d <= 0 {
		add("%s must be a positive duration such as \"10s\"; got %s", name, d)
	}
}

func (c Config) apiKeyProblems(add func(string, ...any)) {
	for i, k := range c.APIKeys {
		if strings.IndexFunc(k, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
			add("GATEWAY_API_KEYS key %d of %d contains spaces or control characters", i+1, len(c.APIKeys))
		}
		if c.Production() && len(k) < minAPIKeyChars {
			add("GATEWAY_API_KEYS key %d of %d is %d characters; production needs at least %d (generate one with: openssl rand -hex 32)", i+1, len(c.APIKeys), len(k), minAPIKeyChars)
		}
	}
}

func (c Config) secretProblems(add func(string, ...any)) {
	switch {
	case len(c.SessionSecret) == 0:
		add("SESSION_SECRET is required (only development generates a throw-away one); generate one with: openssl rand -hex 32")
	case c.Production() && string(c.SessionSecret) == ExampleSessionSecret:
		add("SESSION_SECRET is the example value from .env.example; production refuses it: generate one with: openssl rand -hex 32")
	case c.Production() && len(c.SessionSecret) < minSecretBytes:
		add("SESSION_SECRET must be at least %d bytes in production; got %d (generate one with: openssl rand -hex 32)", minSecretBytes, len(c.SessionSecret))
	}
	if len(c.EncryptionKeys) == 0 {
		add("SESSION_ENCRYPTION_KEY is required (only development generates a throw-away one): 64 hex characters (generate one with: openssl rand -hex 32)")
	}
	example, _ := hex.DecodeString(ExampleEncryptionKey)
	for i, k := range c.EncryptionKeys {
		if len(k) != encryptionKeySize {
			add("SESSION_ENCRYPTION_KEY key %d must be %d bytes; got %d bytes", i+1, encryptionKeySize, len(k))
		}
		if c.Production() && bytes.Equal(k, example) {
			add("SESSION_ENCRYPTION_KEY key %d is the example value from .env.example; production refuses it: generate one with: openssl rand -hex 32", i+1)
		}
		for j := range i {
			if bytes.Equal(k, c.EncryptionKeys[j]) {
				add("SESSION_ENCRYPTION_KEY lists the same key twice (keys %d and %d)", j+1, i+1)
			}
		}
	}
}

func (c Config) sessionProblems(add func(string, ...any)) {
	if c.SessionIdleTTL < time.Second {
		add("SESSION_IDLE_TTL must be at least 1s; got %s", c.SessionIdleTTL)
	}
	if c.SessionLifetime < time.Second {
		add("SESSION_LIFETIME must be at least 1s; got %s", c.SessionLifetime)
	}
	positive(add, "SESSION_TOUCH_INTERVAL", c.SessionTouchInterval)
	if c.SessionTouchInterval > 0 && c.SessionTouchInterval >= c.SessionIdleTTL {
		add("SESSION_TOUCH_INTERVAL (%s) must be shorter than SESSION_IDLE_TTL (%s), or active sessions expire", c.SessionTouchInterval, c.SessionIdleTTL)
	}
	if c.SessionCacheTTL < 0 {
		add("SESSION_CACHE_TTL must be 0 (off) or positive; got %s", c.SessionCacheTTL)
	}
	if c.SessionCacheTTL > c.SessionTouchInterval && c.SessionTouchInterval > 0 {
		add("SESSION_CACHE_TTL (%s) must not exceed SESSION_TOUCH_INTERVAL (%s): a cached session's idle TTL would not be extended in time", c.SessionCacheTTL, c.SessionTouchInterval)
	}
	// The tombstone lifetime (revocation.Config.TombstoneTTL's default):
	// a session revoked on this instance must stay refused longer than any
	// entry read before the revocation can live.
	if tomb := max(2*c.ReconcileInterval, time.Minute); c.SessionCacheTTL > tomb {
		add("SESSION_CACHE_TTL (%s) must not exceed the revocation tombstones' lifetime, max(2×RECONCILE_INTERVAL, 1m) = %s", c.SessionCacheTTL, tomb)
	}
}

func (c Config) cookieProblems(add func(string, ...any)) {
	if c.CookieName == "" || len(c.CookieName) > maxCookieNameLen || strings.IndexFunc(c.CookieName, func(r rune) bool { return !isTokenRune(r) }) >= 0 {
		add("COOKIE_NAME must be 1-%d characters of letters, digits and !#$%%&'*+-.^_`|~; got %q", maxCookieNameLen, clip(c.CookieName))
	} else if lower := strings.ToLower(c.CookieName); strings.HasPrefix(lower, "__host-") || strings.HasPrefix(lower, "__secure-") {
		add("COOKIE_NAME must not start with __Host- or __Secure-: production adds __Host- itself; got %q", clip(c.CookieName))
	}
	if c.CookieDomain != "" {
		if c.Production() {
			add("COOKIE_DOMAIN must be empty in production: the __Host- cookie prefix forbids a Domain attribute; got %q", clip(c.CookieDomain))
		} else if !validDomain(c.CookieDomain) {
			add("COOKIE_DOMAIN must be a domain name such as example.com (no scheme, port or path); got %q", clip(c.CookieDomain))
		}
	}
	switch c.CookieSameSite {
	case "lax", "strict":
	case "none":
		if !c.CookieSecure {
			add("COOKIE_SAMESITE=none requires Secure cookies: use production or set COOKIE_SECURE=true (browsers drop SameSite=None without Secure)")
		}
	default:
		add("COOKIE_SAMESITE must be lax, strict or none; got %q", clip(c.CookieSameSite))
	}
	if c.Production() && !c.CookieSecure {
		add("COOKIE_SECURE cannot be false in production: session cookies must only travel over HTTPS")
	}
}

func (c Config) authProblems(add func(string, ...any)) {
	switch c.AuthMode {
	case AuthModeDev:
		if c.Production() {
			add("AUTH_MODE=dev accepts any user id and is refused in production; use AUTH_MODE=webhook with AUTH_WEBHOOK_URL")
		}
	case AuthModeWebhook:
		if c.AuthWebhookURL == "" {
			add("AUTH_WEBHOOK_URL is required with AUTH_MODE=webhook: the http(s) URL that checks login requests")
		} else if u, err := url.Parse(c.AuthWebhookURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("AUTH_WEBHOOK_URL must be an http:// or https:// URL with a host")
		} else if c.Production() && u.Scheme != "https" {
			add("AUTH_WEBHOOK_URL must be an https:// URL in production: it carries users' passwords (http:// is for development only)")
		}
	default:
		add("AUTH_MODE must be dev or webhook; got %q", clip(c.AuthMode))
	}
	positive(add, "AUTH_WEBHOOK_TIMEOUT", c.AuthWebhookTimeout)
}

func (c Config) wsProblems(add func(string, ...any)) {
	if c.WSMaxMessageBytes < minMessageBytes || c.WSMaxMessageBytes > maxMessageBytes {
		add("WS_MAX_MESSAGE_BYTES must be between %d and %d (16MiB); got %d", minMessageBytes, maxMessageBytes, c.WSMaxMessageBytes)
	}
	if c.WSSendQueue < 1 || c.WSSendQueue > maxSendQueue {
		add("WS_SEND_QUEUE must be between 1 and %d; got %d", maxSendQueue, c.WSSendQueue)
	}
	positive(add, "WS_PING_INTERVAL", c.WSPingInterval)
	positive(add, "WS_PONG_TIMEOUT", c.WSPongTimeout)
	positive(add, "WS_WRITE_TIMEOUT", c.WSWriteTimeout)
	c.capProblems(add)
}

// capProblems checks the connection caps and the inbound rate limit. 0
// turns each off, which production refuses: without them one client can
// take the whole instance.
func (c Config) capProblems(add func(string, ...any)) {
	caps := []struct {
		name string
		v    int
	}{
		{"WS_MAX_CONNECTIONS", c.WSMaxConnections},
		{"WS_MAX_CONNECTIONS_PER_USER", c.WSMaxConnectionsPerUser},
		{"WS_MAX_CONNECTIONS_PER_SESSION", c.WSMaxConnectionsPerSession},
	}
	for _, cp := range caps {
		switch {
		case cp.v < 0 || cp.v > maxConnections:
			add("%s must be between 0 (no cap) and %d; got %d", cp.name, maxConnections, cp.v)
		case cp.v == 0 && c.Production():
			add("%s=0 (no cap) is refused in production: one client could take the whole instance; set a number", cp.name)
		}
	}
	if u, s := c.WSMaxConnectionsPerUser, c.WSMaxConnectionsPerSession; u > 0 && s > u {
		add("WS_MAX_CONNECTIONS_PER_SESSION (%d) must not exceed WS_MAX_CONNECTIONS_PER_USER (%d): a session belongs to one user", s, u)
	}
	if i, u := c.WSMaxConnections, c.WSMaxConnectionsPerUser; i > 0 && u > i {
		add("WS_MAX_CONNECTIONS_PER_USER (%d) must not exceed WS_MAX_CONNECTIONS (%d)", u, i)
	}
	switch r := c.WSInboundRate; {
	case r < 0 || r > maxInboundRate || math.IsNaN(r) || math.IsInf(r, 0):
		add("WS_INBOUND_RATE must be a number of messages per second between 0 (no limit) and %d; got %v", maxInboundRate, r)
	case r == 0 && c.Production():
		add("WS_INBOUND_RATE=0 (no limit) is refused in production: one client could flood the instance; set a rate such as 50")
	}
	if c.WSInboundBurst < 1 || c.WSInboundBurst > maxInboundRate {
		add("WS_INBOUND_BURST must be between 1 and %d; got %d", maxInboundRate, c.WSInboundBurst)
	}
}

func (c Config) httpProblems(add func(string, ...any)) {
	positive(add, "HTTP_READ_TIMEOUT", c.HTTPReadTimeout)
	positive(add, "HTTP_WRITE_TIMEOUT", c.HTTPWriteTimeout)
	positive(add, "HTTP_IDLE_TIMEOUT", c.HTTPIdleTimeout)
	if c.HTTPReadTimeout > maxHTTPTimeout {
		add("HTTP_READ_TIMEOUT must be at most %s: a slow client would hold a connection that long; got %s", maxHTTPTimeout, c.HTTPReadTimeout)
	}
	if c.HTTPWriteTimeout > maxHTTPTimeout {
		add("HTTP_WRITE_TIMEOUT must be at most %s: a slow client would hold a connection that long; got %s", maxHTTPTimeout, c.HTTPWriteTimeout)
	}
	if c.HTTPIdleTimeout > maxIdleTimeout {
		add("HTTP_IDLE_TIMEOUT must be at most %s; got %s", maxIdleTimeout, c.HTTPIdleTimeout)
	}
	if c.AuthMode == AuthModeWebhook && c.HTTPWriteTimeout > 0 && c.AuthWebhookTimeout >= c.HTTPWriteTimeout {
		add("HTTP_WRITE_TIMEOUT (%s) must be longer than AUTH_WEBHOOK_TIMEOUT (%s), or a slow webhook's login answer is cut off", c.HTTPWriteTimeout, c.AuthWebhookTimeout)
	}
}

// validOrigin reports whether o is scheme://host[:port] with an http(s)
// scheme and nothing else.
func validOrigin(o string) bool {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return false
	}
	if u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || u.Opaque != "" {
		return false
	}
	if p := u.Port(); p != "" && !validPort(p, false) {
		return false
	}
	return !strings.HasSuffix(u.Host, ":")
}

func validIDRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._:-", r)
}

// isTokenRune reports whether r may appear in an RFC 6265 cookie name.
func isTokenRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)
}

func validDomain(d string) bool {
	d = strings.TrimPrefix(d, ".")
	if d == "" || len(d) > 253 {
		return false
	}
	for label := range strings.SplitSeq(d, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
