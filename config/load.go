package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Load builds the Config from command-line args (without the program name)
// and lookupEnv (os.LookupEnv in main; a map in tests): flags win over the
// environment, the environment over defaults; empty values count as unset.
// It then validates the result. The error lists every problem at once and
// wraps [ErrInvalid]; for -h or --help it is [flag.ErrHelp] (print [Usage]).
// In development, a missing SESSION_SECRET or SESSION_ENCRYPTION_KEY is
// replaced by a random one and EphemeralSecrets is set.
func Load(args []string, lookupEnv func(string) (string, bool)) (Config, error) {
	s, err := newSource(args, lookupEnv)
	if err != nil {
		return Config{}, err
	}
	c := Config{
		Env:            strings.ToLower(s.str("GATEWAY_ENV")),
		Addr:           s.str("GATEWAY_ADDR"),
		InstanceID:     s.str("GATEWAY_INSTANCE_ID"),
		DebugAddr:      s.str("GATEWAY_DEBUG_ADDR"),
		MetricsAddr:    s.str("GATEWAY_METRICS_ADDR"),
		APIKeys:        s.list("GATEWAY_API_KEYS"),
		AllowedOrigins: s.list("GATEWAY_ALLOWED_ORIGINS"),
		LogLevel:       strings.ToLower(s.str("LOG_LEVEL")),
		LogFormat:      strings.ToLower(s.str("LOG_FORMAT")),
		KeyPrefix:      s.str("REDIS_KEY_PREFIX"),
		CookieName:     s.str("COOKIE_NAME"),
		CookieDomain:   s.str("COOKIE_DOMAIN"),
		CookieSameSite: strings.ToLower(s.str("COOKIE_SAMESITE")),
		AuthMode:       strings.ToLower(s.str("AUTH_MODE")),
		AuthWebhookURL: s.str("AUTH_WEBHOOK_URL"),
	}
	c.UseRedis, _ = s.boolean("USE_REDIS_SESSIONS")
	loadTrustedProxies(s, &c)
	demo, demoSet := s.boolean("DEMO_ENABLED")
	c.DemoEnabled = demo || (!c.Production() && !demoSet)
	c.AdminEnabled, _ = s.boolean("ADMIN_ENABLED")
	s.dur("ADMIN_SESSION_LIFETIME", &c.AdminSessionLifetime)
	if c.InstanceID == "" {
		c.InstanceID = defaultInstanceID()
	}
	if c.LogFormat == "" {
		c.LogFormat = "console"
		if c.Production() {
			c.LogFormat = "json"
		}
	}
	if c.AuthMode == "" {
		c.AuthMode = AuthModeDev
		if c.Production() {
			c.AuthMode = AuthModeWebhook
		}
	}
	secure, secureSet := s.boolean("COOKIE_SECURE")
	c.CookieSecure = secure || (c.Production() && !secureSet)

	s.dur("SESSION_IDLE_TTL", &c.SessionIdleTTL)
	s.dur("SESSION_LIFETIME", &c.SessionLifetime)
	s.dur("SESSION_TOUCH_INTERVAL", &c.SessionTouchInterval)
	s.dur("SESSION_CACHE_TTL", &c.SessionCacheTTL)
	s.dur("AUTH_WEBHOOK_TIMEOUT", &c.AuthWebhookTimeout)
	s.integer("WS_MAX_MESSAGE_BYTES", &c.WSMaxMessageBytes)
	s.intField("WS_SEND_QUEUE", &c.WSSendQueue)
	s.dur("WS_PING_INTERVAL", &c.WSPingInterval)
	s.dur("WS_PONG_TIMEOUT", &c.WSPongTimeout)
	s.dur("WS_WRITE_TIMEOUT", &c.WSWriteTimeout)
	s.dur("HTTP_READ_TIMEOUT", &c.HTTPReadTimeout)
	s.dur("HTTP_WRITE_TIMEOUT", &c.HTTPWriteTimeout)
	s.dur("HTTP_IDLE_TIMEOUT", &c.HTTPIdleTimeout)
	s.intField("WS_MAX_CONNECTIONS", &c.WSMaxConnections)
	s.intField("WS_MAX_CONNECTIONS_PER_USER", &c.WSMaxConnectionsPerUser)
	s.intField("WS_MAX_CONNECTIONS_PER_SESSION", &c.WSMaxConnectionsPerSession)
	s.float("WS_INBOUND_RATE", &c.WSInboundRate)
	s.intField("WS_INBOUND_BURST", &c.WSInboundBurst)
	s.float("MEMORY_HEADROOM", &c.MemoryHeadroom)
	s.float("RATE_LIMIT_RPS", &c.RateLimitRPS)
	s.intField("RATE_LIMIT_BURST", &c.RateLimitBurst)
	s.dur("DRAIN_WINDOW", &c.DrainWindow)
	s.dur("SHUTDOWN_TIMEOUT", &c.ShutdownTimeout)
	s.dur("PUBSUB_HEARTBEAT_INTERVAL", &c.HeartbeatInterval)
	s.intField("PUBSUB_SHARDS", &c.PubsubShards)
	s.dur("RECONCILE_INTERVAL", &c.ReconcileInterval)
	c.PresenceEnabled, _ = s.boolean("PRESENCE_ENABLED")
	c.PresenceEvents, _ = s.boolean("PRESENCE_EVENTS")
	s.dur("PRESENCE_FLUSH_INTERVAL", &c.PresenceFlushInterval)
	s.intField("HISTORY_SIZE", &c.HistorySize)
	s.dur("HISTORY_TTL", &c.HistoryTTL)
	s.intField("RESUME_MAX_EVENTS", &c.ResumeMaxEvents)
	s.intField("INBOUND_PARTITIONS", &c.InboundPartitions)
	s.intField("INBOUND_MAX_LEN", &c.InboundMaxLen)
	s.intField("INBOUND_MAX_BYTES", &c.InboundMaxBytes)
	c.InboundGroup = s.str("INBOUND_GROUP")
	s.dur("INBOUND_VISIBILITY_TIMEOUT", &c.InboundVisibilityTimeout)
	s.intField("INBOUND_MAX_DELIVERIES", &c.InboundMaxDeliveries)
	c.InboundWebhookURL = s.str("INBOUND_WEBHOOK_URL")
	if v, ok := s.lookup("INBOUND_WEBHOOK_SECRET"); ok {
		c.InboundWebhookSecret = []byte(v)
	}
	s.dur("INBOUND_WEBHOOK_TIMEOUT", &c.InboundWebhookTimeout)
	s.intField("INBOUND_WEBHOOK_CONCURRENCY", &c.InboundWebhookConcurrency)

	if c.InboundMaxBytes == 0 { // unset: the default, within the frame limit
		c.InboundMaxBytes = int(min(defaultInboundMaxBytes, c.WSMaxMessageBytes))
	}

	loadRedis(s, &c)
	loadSecrets(s, &c)

	problems := append(s.problems, s.followUps(c.problems())...)
	if len(problems) > 0 {
		return c, errors.Join(append([]error{ErrInvalid}, problems...)...)
	}
	return c, nil
}

// loadSecrets parses SESSION_SECRET and SESSION_ENCRYPTION_KEY, generating
// ephemeral ones in development when they are missing.
func loadSecrets(s *source, c *Config) {
	if v, ok := s.lookup("SESSION_SECRET"); ok {
		c.SessionSecret = []byte(v)
	}
	if v, ok := s.lookup("SESSION_ENCRYPTION_KEY"); ok {
		c.EncryptionKeys = parseKeys(s, v)
	}
	if c.Production() {
		return
	}
	if len(c.SessionSecret) == 0 {
		c.SessionSecret = randomBytes(32)
		c.EphemeralSecrets = true
	}
	if _, set := s.lookup("SESSION_ENCRYPTION_KEY"); !set {
		c.EncryptionKeys = [][]byte{randomBytes(32)}
		c.EphemeralSecrets = true
	}
}

// parseKeys decodes a comma-separated list of 64-hex keys. Problems never
// quote key material.
func parseKeys(s *source, v string) [][]byte {
	const name = "SESSION_ENCRYPTION_KEY"
	items := strings.Split(v, ",")
	which := func(i int) string {
		if len(items) == 1 {
			return name
		}
		return fmt.Sprintf("%s key %d of %d", name, i+1, len(items))
	}
	var keys [][]byte
	for i, item := range items {
		item = strings.TrimSpace(item)
		if len(item) != 64 {
			s.problemf("%s must be 64 hex characters (32 bytes); got %d characters (generate one with: openssl rand -hex 32)", which(i), len(item))
			continue
		}
		k, err := hex.DecodeString(item)
		if err != nil {
			s.problemf("%s must be hexadecimal (0-9, a-f); it has other characters", which(i))
			continue
		}
		keys = append(keys, k)
	}
	return keys
}

// defaultInstanceID is the hostname (sanitised) plus 6 random hex
// characters, so that two processes on one host differ.
func defaultInstanceID() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if validIDRune(r) {
			return r
		}
		return '-'
	}, host)
	if len(host) > 50 {
		host = host[:50]
	}
	if host == "" {
		host = "gateway"
	}
	return host + "-" + hex.EncodeToString(randomBytes(3))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it crashes the program instead)
	return b
}
