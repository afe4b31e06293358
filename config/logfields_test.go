package config

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestLogFieldsRedactSecrets(t *testing.T) {
	const (
		redisPass = "redis-pass-9f8e7d"
		hookPass  = "hook-pass-1a2b3c"
		hookToken = "tok-55aa"
	)
	env := with(prodEnv(),
		"REDIS_URL=redis://:"+redisPass+"@r.internal:6379/1",
		"AUTH_WEBHOOK_URL=https://user:"+hookPass+"@auth.internal/login?token="+hookToken,
		"GATEWAY_API_KEYS="+testAPIKey+",second-api-key-0123456789",
		"SESSION_ENCRYPTION_KEY="+testKey+","+testKey2,
		"INBOUND_WEBHOOK_URL=https://app:"+hookPass+"@app.internal/inbound?token="+hookToken,
		"INBOUND_WEBHOOK_SECRET="+testWebhookSecret,
	)
	c := mustLoad(t, nil, env)
	core, logs := observer.New(zapcore.InfoLevel)
	zap.New(core).Info("config", c.LogFields()...)
	entry := logs.All()[0]
	buf, err := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()).EncodeEntry(entry.Entry, entry.Context)
	if err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, secret := range []string{redisPass, hookPass, hookToken, testAPIKey, "second-api-key", testSecret, testKey, testKey2, testWebhookSecret} {
		if strings.Contains(out, secret) {
			t.Fatalf("LogFields leaks %q:\n%s", secret, out)
		}
	}
	m := entry.ContextMap()
	checks := []struct {
		name string
		key  string
		want any
	}{
		{name: "redis redacted", key: "redis", want: "redis://:***@r.internal:6379/1"},
		{name: "webhook url without credentials", key: "auth_webhook_url", want: "https://auth.internal/login"},
		{name: "inbound webhook url without credentials", key: "inbound_webhook_url", want: "https://app.internal/inbound"},
		{name: "inbound webhook timeout", key: "inbound_webhook_timeout", want: 10 * time.Second},
		{name: "inbound webhook concurrency", key: "inbound_webhook_concurrency", want: int64(8)},
		{name: "api keys counted", key: "api_keys", want: int64(2)},
		{name: "keys counted", key: "encryption_keys", want: int64(2)},
		{name: "secrets state", key: "session_secrets", want: "set"},
		{name: "cookie name", key: "cookie_name", want: "__Host-sg_session"},
	}
	for _, tt := range checks {
		t.Run(tt.name, func(t *testing.T) {
			if m[tt.key] != tt.want {
				t.Fatalf("%s = %#v, want %#v", tt.key, m[tt.key], tt.want)
			}
		})
	}
	if dev := mustLoad(t, nil, nil); fieldValue(dev.LogFields(), "session_secrets") != "ephemeral" {
		t.Fatal("development without secrets should log session_secrets=ephemeral")
	}
}

func fieldValue(fs []zap.Field, key string) string {
	for _, f := range fs {
		if f.Key == key {
			return f.String
		}
	}
	return ""
}

// The sentinels' own password is never among the logged settings.
func TestLogFieldsRedactSentinelPassword(t *testing.T) {
	const sentinelPass = "sentinel-pass-4c3b2a"
	c := mustLoad(t, nil, with(prodEnv(), "USE_REDIS_SESSIONS=true", "REDIS_SENTINEL_ADDRS=s1:26379,s2:26379",
		"REDIS_MASTER_NAME=mymaster", "REDIS_SENTINEL_USERNAME=sen", "REDIS_SENTINEL_PASSWORD="+sentinelPass))
	core, logs := observer.New(zapcore.InfoLevel)
	zap.New(core).Info("config", c.LogFields()...)
	entry := logs.All()[0]
	buf, err := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()).EncodeEntry(entry.Entry, entry.Context)
	if err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); strings.Contains(out, sentinelPass) || !strings.Contains(out, "redis-sentinel://s1:26379,s2:26379/mymaster/0") {
		t.Fatalf("LogFields leaks the sentinel password or lacks the sentinels:\n%s", out)
	}
}
