package config

import (
	"maps"
	"strings"
	"testing"
)

const (
	testSecret = "test-secret-0123456789abcdef-0123456789abcdef"
	testKey    = "a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0"
	testKey2   = "c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0"
	testAPIKey = "api-key-0123456789abcdef"
	// testWebhookSecret is a valid production INBOUND_WEBHOOK_SECRET.
	testWebhookSecret = "webhook-secret-0123456789abcdef-0123456789"
)

// lookup turns a map into a lookupEnv function.
func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

// prodEnv is a valid production environment.
func prodEnv() map[string]string {
	return map[string]string{
		"GATEWAY_ENV":            "production",
		"SESSION_SECRET":         testSecret,
		"SESSION_ENCRYPTION_KEY": testKey,
		"AUTH_WEBHOOK_URL":       "https://auth.internal/login",
		"GATEWAY_API_KEYS":       testAPIKey,
	}
}

// with returns a copy of base with kv ("NAME=value" pairs) applied.
func with(base map[string]string, kv ...string) map[string]string {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	for _, p := range kv {
		k, v, _ := strings.Cut(p, "=")
		out[k] = v
	}
	return out
}

func mustLoad(t *testing.T, args []string, env map[string]string) Config {
	t.Helper()
	c, err := Load(args, lookup(env))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}
