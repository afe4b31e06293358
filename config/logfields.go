package config

import (
	"net/netip"
	"net/url"

	"go.uber.org/zap"
)

// LogFields returns the effective configuration as fields for one start-up
// log line. Secrets are never included: the session secret and keys appear
// as "set"/"ephemeral"/"example" and a count, API keys as a count, the Redis
// password as "***" and the webhook URLs without credentials or query;
// the inbound webhook secret not at all.
func (c Config) LogFields() []zap.Field {
	secrets := "set"
	switch {
	case c.EphemeralSecrets:
		secrets = "ephemeral"
	case c.UsesExampleSecrets():
		secrets = "example"
	case len(c.SessionSecret) == 0:
		secrets = "unset"
	}
	return []zap.Field{
		zap.String("env", c.Env),
		zap.String("addr", c.Addr),
		zap.String("debug_addr", c.DebugAddr),
		zap.String("instance_id", c.InstanceID),
		zap.Int("api_keys", len(c.APIKeys)),
		zap.Strings("allowed_origins", c.AllowedOrigins),
		zap.Strings("trusted_proxies", prefixStrings(c.TrustedProxies)),
		zap.String("metrics_addr", c.MetricsAddr),
		zap.Bool("demo_enabled", c.DemoEnabled),
		zap.Bool("admin_enabled", c.AdminEnabled),
		zap.Duration("admin_session_lifetime", c.AdminSessionLifetime),
		zap.String("log_level", c.LogLevel),
		zap.String("log_format", c.LogFormat),
		zap.Bool("use_redis", c.UseRedis),
		zap.String("redis", c.Redis.Redacted()),
		zap.Int("redis_connect_attempts", c.Redis.ConnectAttempts),
		zap.Duration("redis_backoff_min", c.Redis.BackoffMin),
		zap.Duration("redis_backoff_max", c.Redis.BackoffMax),
		zap.String("key_prefix", c.KeyPrefix),
		zap.String("session_secrets", secrets),
		zap.Int("encryption_keys", len(c.EncryptionKeys)),
		zap.Duration("session_idle_ttl", c.SessionIdleTTL),
		zap.Duration("session_lifetime", c.SessionLifetime),
		zap.Duration("session_touch_interval", c.SessionTouchInterval),
		zap.Duration("session_cache_ttl", c.SessionCacheTTL),
		zap.String("cookie_name", c.EffectiveCookieName()),
		zap.String("cookie_domain", c.CookieDomain),
		zap.String("cookie_samesite", c.CookieSameSite),
		zap.Bool("cookie_secure", c.CookieSecure),
		zap.String("auth_mode", c.AuthMode),
		zap.String("auth_webhook_url", redactURL(c.AuthWebhookURL)),
		zap.Duration("auth_webhook_timeout", c.AuthWebhookTimeout),
		zap.Int64("ws_max_message_bytes", c.WSMaxMessageBytes),
		zap.Int("ws_send_queue", c.WSSendQueue),
		zap.Duration("ws_ping_interval", c.WSPingInterval),
		zap.Duration("ws_pong_timeout", c.WSPongTimeout),
		zap.Duration("ws_write_timeout", c.WSWriteTimeout),
		zap.Duration("http_read_timeout", c.HTTPReadTimeout),
		zap.Duration("http_write_timeout", c.HTTPWriteTimeout),
		zap.Duration("http_idle_timeout", c.HTTPIdleTimeout),
		zap.Int("ws_max_connections", c.WSMaxConnections),
		zap.Int("ws_max_connections_per_user", c.WSMaxConnectionsPerUser),
		zap.Int("ws_max_connections_per_session", c.WSMaxConnectionsPerSession),
		zap.Float64("ws_inbound_rate", c.WSInboundRate),
		zap.Int("ws_inbound_burst", c.WSInboundBurst),
		zap.Float64("memory_headroom", c.MemoryHeadroom),
		zap.Float64("rate_limit_rps", c.RateLimitRPS),
		zap.Int("rate_limit_burst", c.RateLimitBurst),
		zap.Duration("drain_window", c.DrainWindow),
		zap.Duration("shutdown_timeout", c.ShutdownTimeout),
		zap.Duration("heartbeat_interval", c.HeartbeatInterval),
		zap.Int("pubsub_shards", c.PubsubShards),
		zap.Duration("reconcile_interval", c.ReconcileInterval),
		zap.Bool("presence_enabled", c.PresenceEnabled),
		zap.Bool("presence_events", c.PresenceEvents),
		zap.Duration("presence_flush_interval", c.PresenceFlushInterval),
		zap.Int("history_size", c.HistorySize),
		zap.Duration("history_ttl", c.HistoryTTL),
		zap.Int("resume_max_events", c.ResumeMaxEvents),
		zap.Int("inbound_partitions", c.InboundPartitions),
		zap.Int("inbound_max_len", c.InboundMaxLen),
		zap.Int("inbound_max_bytes", c.InboundMaxBytes),
		zap.String("inbound_group", c.InboundGroup),
		zap.Duration("inbound_visibility_timeout", c.InboundVisibilityTimeout),
		zap.Int("inbound_max_deliveries", c.InboundMaxDeliveries),
		zap.String("inbound_webhook_url", redactURL(c.InboundWebhookURL)),
		zap.Duration("inbound_webhook_timeout", c.InboundWebhookTimeout),
		zap.Int("inbound_webhook_concurrency", c.InboundWebhookConcurrency),
	}
}

// redactURL drops user info, query and fragment, which may carry
// credentials.
func redactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	u.User, u.RawQuery, u.Fragment, u.RawFragment = nil, "", "", ""
	return u.String()
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}
