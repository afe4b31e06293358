package gateway

import (
	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/connmgr"
)

// ConfigFrom maps the process configuration (every variable, validated) onto
// the gateway's own [Config]. It is the only place the gateway package reads
// a config.Config: the Server itself knows only its Config.
func ConfigFrom(c config.Config) Config {
	return Config{
		InstanceID:            c.InstanceID,
		Addr:                  c.Addr,
		APIKeys:               c.APIKeys,
		AllowedOrigins:        c.AllowedOrigins,
		TrustedProxies:        c.TrustedProxies,
		DemoEnabled:           c.DemoEnabled,
		MetricsElsewhere:      c.MetricsAddr != "",
		Cookie:                CookieConfig{Name: c.EffectiveCookieName(), Domain: c.CookieDomain, SameSite: c.CookieSameSite, Secure: c.CookieSecure},
		RateLimitRPS:          c.RateLimitRPS,
		RateLimitBurst:        c.RateLimitBurst,
		HTTPReadTimeout:       c.HTTPReadTimeout,
		HTTPWriteTimeout:      c.HTTPWriteTimeout,
		HTTPIdleTimeout:       c.HTTPIdleTimeout,
		ShutdownTimeout:       c.ShutdownTimeout,
		HeartbeatInterval:     c.HeartbeatInterval,
		ReconcileInterval:     c.ReconcileInterval,
		SessionCacheTTL:       c.SessionCacheTTL,
		EventChannel:          c.KeyPrefix + "events",
		HistoryOff:            c.HistoryOff(),
		HistorySize:           c.HistorySize,
		HistoryTTL:            c.HistoryTTL,
		ResumeMaxEvents:       c.ResumeMaxEvents,
		InboundMaxBytes:       c.InboundMaxBytes,
		PresenceEvents:        c.PresenceEvents,
		PresenceFlushInterval: c.PresenceFlushInterval,
		Admin: AdminConfig{
			Enabled:         c.AdminEnabled,
			RequireTLS:      c.Production(),
			SessionLifetime: c.AdminSessionLifetime,
			KeyPrefix:       c.KeyPrefix,
		},
		Conn: connmgr.Config{
			SendQueue:                c.WSSendQueue,
			MaxMessageBytes:          c.WSMaxMessageBytes,
			PingInterval:             c.WSPingInterval,
			PongTimeout:              c.WSPongTimeout,
			WriteTimeout:             c.WSWriteTimeout,
			DrainWindow:              c.DrainWindow,
			MaxConnections:           c.WSMaxConnections,
			MaxConnectionsPerUser:    c.WSMaxConnectionsPerUser,
			MaxConnectionsPerSession: c.WSMaxConnectionsPerSession,
			InboundRate:              c.WSInboundRate,
			InboundBurst:             c.WSInboundBurst,
		},
	}
}
