package config

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/sessiongate/sessiongate/redisconn"
)

func TestDevelopmentDefaults(t *testing.T) {
	c := mustLoad(t, nil, nil)
	checks := []struct {
		name string
		got  any
		want any
	}{
		{"Env", c.Env, "development"},
		{"Addr", c.Addr, ":8080"},
		{"APIKeys", len(c.APIKeys), 0},
		{"AllowedOrigins", len(c.AllowedOrigins), 0},
		{"TrustedProxies", len(c.TrustedProxies), 0},
		{"MetricsAddr", c.MetricsAddr, ""},
		{"DemoEnabled", c.DemoEnabled, true},
		{"LogLevel", c.LogLevel, "info"},
		{"LogFormat", c.LogFormat, "console"},
		{"UseRedis", c.UseRedis, false},
		{"Redis.URL", c.Redis.URL, "redis://localhost:6379"},
		{"Redis.ConnectAttempts", c.Redis.ConnectAttempts, 10},
		{"Redis.BackoffMin", c.Redis.BackoffMin, time.Second},
		{"Redis.BackoffMax", c.Redis.BackoffMax, 10 * time.Second},
		{"KeyPrefix", c.KeyPrefix, "sessiongate:"},
		{"EphemeralSecrets", c.EphemeralSecrets, true},
		{"SessionSecret bytes", len(c.SessionSecret), 32},
		{"EncryptionKeys", len(c.EncryptionKeys), 1},
		{"EncryptionKeys[0] bytes", len(c.EncryptionKeys[0]), 32},
		{"SessionIdleTTL", c.SessionIdleTTL, 24 * time.Hour},
		{"SessionLifetime", c.SessionLifetime, 168 * time.Hour},
		{"SessionTouchInterval", c.SessionTouchInterval, time.Minute},
		{"CookieName", c.EffectiveCookieName(), "sg_session"},
		{"CookieSameSite", c.CookieSameSite, "lax"},
		{"CookieSecure", c.CookieSecure, false},
		{"AuthMode", c.AuthMode, "dev"},
		{"AuthWebhookTimeout", c.AuthWebhookTimeout, 5 * time.Second},
		{"WSMaxMessageBytes", c.WSMaxMessageBytes, int64(32768)},
		{"WSSendQueue", c.WSSendQueue, 64},
		{"WSPingInterval", c.WSPingInterval, 25 * time.Second},
		{"WSPongTimeout", c.WSPongTimeout, 10 * time.Second},
		{"WSWriteTimeout", c.WSWriteTimeout, 10 * time.Second},
		{"RateLimitRPS", c.RateLimitRPS, 20.0},
		{"RateLimitBurst", c.RateLimitBurst, 40},
		{"DrainWindow", c.DrainWindow, 10 * time.Second},
		{"ShutdownTimeout", c.ShutdownTimeout, 30 * time.Second},
		{"HeartbeatInterval", c.HeartbeatInterval, 5 * time.Second},
		{"ReconcileInterval", c.ReconcileInterval, 30 * time.Second},
		{"Production", c.Production(), false},
	}
	for _, tt := range checks {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Fatalf("%s = %v, want %v", tt.name, tt.got, tt.want)
			}
		})
	}
	if !regexp.MustCompile(`^[A-Za-z0-9._:-]+-[0-9a-f]{6}$`).MatchString(c.InstanceID) {
		t.Fatalf("InstanceID %q is not hostname-<6 hex>", c.InstanceID)
	}
	if other := mustLoad(t, nil, nil); string(other.SessionSecret) == string(c.SessionSecret) || other.InstanceID == c.InstanceID {
		t.Fatal("two loads generated the same ephemeral secret or instance id")
	}
}

func TestProductionDefaults(t *testing.T) {
	c := mustLoad(t, nil, prodEnv())
	if !c.Production() || c.LogFormat != "json" || c.AuthMode != "webhook" || !c.CookieSecure ||
		c.EffectiveCookieName() != "__Host-sg_session" || c.EphemeralSecrets || c.DemoEnabled || len(c.TrustedProxies) != 0 {
		t.Fatalf("production defaults wrong: format=%s auth=%s secure=%v cookie=%s ephemeral=%v demo=%v proxies=%v",
			c.LogFormat, c.AuthMode, c.CookieSecure, c.EffectiveCookieName(), c.EphemeralSecrets, c.DemoEnabled, c.TrustedProxies)
	}
	if string(c.SessionSecret) != testSecret || len(c.EncryptionKeys) != 1 || hex.EncodeToString(c.EncryptionKeys[0]) != testKey {
		t.Fatal("production secrets not taken from the environment")
	}
}

func TestPrecedence(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		get  func(Config) any
		want any
	}{
		{name: "default", get: func(c Config) any { return c.Addr }, want: ":8080"},
		{name: "env", env: map[string]string{"GATEWAY_ADDR": ":9000"}, get: func(c Config) any { return c.Addr }, want: ":9000"},
		{name: "flag", args: []string{"--gateway-addr", ":9100"}, get: func(c Config) any { return c.Addr }, want: ":9100"},
		{name: "flag wins over env", env: map[string]string{"GATEWAY_ADDR": ":9000"}, args: []string{"--gateway-addr=:9100"}, get: func(c Config) any { return c.Addr }, want: ":9100"},
		{name: "single dash flag", args: []string{"-gateway-addr=:9200"}, get: func(c Config) any { return c.Addr }, want: ":9200"},
		{name: "empty env is unset", env: map[string]string{"GATEWAY_ADDR": "  "}, get: func(c Config) any { return c.Addr }, want: ":8080"},
		{name: "empty flag hides env", env: map[string]string{"LOG_LEVEL": "debug"}, args: []string{"--log-level="}, get: func(c Config) any { return c.LogLevel }, want: "info"},
		{name: "env value trimmed", env: map[string]string{"LOG_LEVEL": " DEBUG "}, get: func(c Config) any { return c.LogLevel }, want: "debug"},
		{name: "bool flag alone", args: []string{"--use-redis-sessions"}, get: func(c Config) any { return c.UseRedis }, want: true},
		{name: "bool flag false wins", env: map[string]string{"USE_REDIS_SESSIONS": "true"}, args: []string{"--use-redis-sessions=false"}, get: func(c Config) any { return c.UseRedis }, want: false},
		{name: "bool env yes", env: map[string]string{"COOKIE_SECURE": "yes"}, get: func(c Config) any { return c.CookieSecure }, want: true},
		{name: "duration flag over env", env: map[string]string{"SESSION_IDLE_TTL": "1h"}, args: []string{"--session-idle-ttl", "2h"}, get: func(c Config) any { return c.SessionIdleTTL }, want: 2 * time.Hour},
		{name: "int env", env: map[string]string{"WS_SEND_QUEUE": "8"}, get: func(c Config) any { return c.WSSendQueue }, want: 8},
		{name: "connection caps default", get: func(c Config) any {
			return []any{c.WSMaxConnections, c.WSMaxConnectionsPerUser, c.WSMaxConnectionsPerSession, c.WSInboundRate, c.WSInboundBurst}
		}, want: []any{100000, 64, 16, 50.0, 100}},
		{name: "inbound rate flag", args: []string{"--ws-inbound-rate=2.5", "--ws-max-connections-per-session=3"}, get: func(c Config) any {
			return []any{c.WSInboundRate, c.WSMaxConnectionsPerSession}
		}, want: []any{2.5, 3}},
		{name: "inbound webhook defaults", get: func(c Config) any {
			return []any{c.InboundWebhookURL, c.InboundWebhookSecret == nil, c.InboundWebhookTimeout, c.InboundWebhookConcurrency}
		}, want: []any{"", true, 10 * time.Second, 8}},
		{name: "inbound webhook from env and flag", env: map[string]string{"INBOUND_WEBHOOK_URL": "http://app:9000/in", "INBOUND_WEBHOOK_SECRET": " s3cret ", "INBOUND_WEBHOOK_TIMEOUT": "3s"},
			args: []string{"--inbound-webhook-concurrency=2"}, get: func(c Config) any {
				return []any{c.InboundWebhookURL, string(c.InboundWebhookSecret), c.InboundWebhookTimeout, c.InboundWebhookConcurrency}
			}, want: []any{"http://app:9000/in", "s3cret", 3 * time.Second, 2}},
		{name: "float flag", args: []string{"--rate-limit-rps=0.5"}, get: func(c Config) any { return c.RateLimitRPS }, want: 0.5},
		{name: "list env trimmed", env: map[string]string{"GATEWAY_ALLOWED_ORIGINS": " http://a.test , ,https://b.test:8443 "}, get: func(c Config) any { return c.AllowedOrigins }, want: []string{"http://a.test", "https://b.test:8443"}},
		{name: "api keys flag", env: map[string]string{"GATEWAY_API_KEYS": "envkey"}, args: []string{"--gateway-api-keys=k1,k2"}, get: func(c Config) any { return c.APIKeys }, want: []string{"k1", "k2"}},
		{name: "redis url flag over env", env: map[string]string{"REDIS_URL": "redis://env:6379"}, args: []string{"--redis-url", "redis://flag:6380/1"}, get: func(c Config) any { return c.Redis.URL }, want: "redis://flag:6380/1"},
		{name: "secret from flag", args: []string{"--session-secret", testSecret}, get: func(c Config) any { return string(c.SessionSecret) }, want: testSecret},
		{name: "key from env not ephemeral", env: map[string]string{"SESSION_ENCRYPTION_KEY": testKey, "SESSION_SECRET": testSecret}, get: func(c Config) any { return c.EphemeralSecrets }, want: false},
		{name: "only key given still ephemeral", env: map[string]string{"SESSION_ENCRYPTION_KEY": testKey}, get: func(c Config) any { return c.EphemeralSecrets }, want: true},
		{name: "cookie secure forced in dev", env: map[string]string{"COOKIE_SECURE": "true"}, get: func(c Config) any { return c.CookieSecure }, want: true},
		{name: "log format explicit in production", env: with(prodEnv(), "LOG_FORMAT=console"), get: func(c Config) any { return c.LogFormat }, want: "console"},
		{name: "key rotation list", env: map[string]string{"SESSION_ENCRYPTION_KEY": testKey2 + "," + testKey}, get: func(c Config) any {
			return hex.EncodeToString(c.EncryptionKeys[0]) + "|" + hex.EncodeToString(c.EncryptionKeys[1])
		}, want: testKey2 + "|" + testKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, tt.args, tt.env)
			if got := tt.get(c); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestRedisSettings(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		wantURL   string
		wantUser  string
		wantPass  string
		wantDB    int
		wantAddrs []string
		wantRedac string

		wantSentUser, wantSentPass string
	}{
		{name: "default", wantURL: "redis://localhost:6379", wantRedac: "redis://localhost:6379/0"},
		{name: "URL credentials and db", env: map[string]string{"REDIS_URL": "rediss://bob:pw1@r.example:6380/2"}, wantURL: "rediss://bob:pw1@r.example:6380/2", wantUser: "bob", wantPass: "pw1", wantDB: 2, wantRedac: "rediss://bob:***@r.example:6380/2"},
		{name: "host override", env: map[string]string{"REDIS_HOST": "cache"}, wantURL: "redis://cache:6379", wantRedac: "redis://cache:6379/0"},
		{name: "port override", env: map[string]string{"REDIS_URL": "redis://r:1234", "REDIS_PORT": "7000"}, wantURL: "redis://r:7000", wantRedac: "redis://r:7000/0"},
		{name: "ipv6 host", env: map[string]string{"REDIS_HOST": "::1"}, wantURL: "redis://[::1]:6379", wantRedac: "redis://[::1]:6379/0"},
		{name: "db override", env: map[string]string{"REDIS_URL": "redis://r:6379/2", "REDIS_DB": "5"}, wantURL: "redis://r:6379/5", wantDB: 5, wantRedac: "redis://r:6379/5"},
		{name: "password override", env: map[string]string{"REDIS_URL": "redis://:old@r:6379", "REDIS_PASSWORD": "new"}, wantURL: "redis://:old@r:6379", wantPass: "new", wantRedac: "redis://:***@r:6379/0"},
		{name: "username", env: map[string]string{"REDIS_USERNAME": "app", "REDIS_PASSWORD": "pw"}, wantURL: "redis://localhost:6379", wantUser: "app", wantPass: "pw", wantRedac: "redis://app:***@localhost:6379/0"},
		{name: "cluster", env: map[string]string{"REDIS_ADDRS": "a:7000, b:7001 ,c:7002"}, wantURL: "redis://localhost:6379", wantAddrs: []string{"a:7000", "b:7001", "c:7002"}, wantRedac: "redis-cluster://a:7000,b:7001,c:7002"},
		{name: "sentinel", env: map[string]string{"REDIS_ADDRS": "s1:26379,s2:26379", "REDIS_MASTER_NAME": "mymaster", "REDIS_DB": "1"}, wantURL: "redis://localhost:6379/1", wantDB: 1, wantAddrs: []string{"s1:26379", "s2:26379"}, wantRedac: "redis-sentinel://s1:26379,s2:26379/mymaster/1"},
		{name: "sentinel addrs", env: map[string]string{"REDIS_SENTINEL_ADDRS": "s1:26379, s2:26379", "REDIS_MASTER_NAME": "mymaster", "REDIS_SENTINEL_USERNAME": "sen", "REDIS_SENTINEL_PASSWORD": "hunter2"}, wantURL: "redis://localhost:6379", wantAddrs: []string{"s1:26379", "s2:26379"}, wantSentUser: "sen", wantSentPass: "hunter2", wantRedac: "redis-sentinel://s1:26379,s2:26379/mymaster/0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustLoad(t, nil, tt.env).Redis
			m, err := redisconn.New(r, zaptest.NewLogger(t))
			if err != nil {
				t.Fatalf("redisconn.New refuses the loaded settings: %v", err)
			}
			t.Cleanup(func() { _ = m.Close() })
			if r.URL != tt.wantURL || r.Username != tt.wantUser || r.Password != tt.wantPass || r.DB != tt.wantDB ||
				!reflect.DeepEqual(r.Addrs, tt.wantAddrs) || r.Redacted() != tt.wantRedac ||
				r.SentinelUsername != tt.wantSentUser || r.SentinelPassword != tt.wantSentPass {
				t.Fatalf("got url=%q user=%q pass=%q db=%d addrs=%v redacted=%q", r.URL, r.Username, r.Password, r.DB, r.Addrs, r.Redacted())
			}
		})
	}
}

func TestFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want error
		text string
	}{
		{name: "help", args: []string{"-h"}, want: flag.ErrHelp},
		{name: "long help", args: []string{"--help"}, want: flag.ErrHelp},
		{name: "unknown flag", args: []string{"--no-such-flag"}, want: ErrInvalid, text: "no-such-flag"},
		{name: "missing value", args: []string{"--redis-url"}, want: ErrInvalid, text: "redis-url"},
		{name: "positional argument", args: []string{"serve"}, want: ErrInvalid, text: `unexpected argument "serve"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(tt.args, lookup(nil))
			if !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
			if !strings.Contains(fmt.Sprint(err), tt.text) {
				t.Fatalf("error %q does not mention %q", err, tt.text)
			}
		})
	}
}

func TestNilLookupEnv(t *testing.T) {
	if _, err := Load(nil, nil); err != nil {
		t.Fatalf("Load(nil, nil): %v", err)
	}
}
