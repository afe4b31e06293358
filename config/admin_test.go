package config

import (
	"strings"
	"testing"
	"time"
)

// TestAdminRules: the admin console is off by default, needs an API key to
// log in with, and production refuses it unless TLS is terminated by a
// trusted proxy (the gateway has no TLS listener of its own).
func TestAdminRules(t *testing.T) {
	dev := map[string]string{"GATEWAY_API_KEYS": testAPIKey}
	prod := prodEnv()
	tests := []struct {
		name string
		env  map[string]string
		want string // substring of the error; "" means valid
	}{
		{name: "development enabled valid", env: with(dev, "ADMIN_ENABLED=true")},
		{name: "development without api keys", env: with(dev, "ADMIN_ENABLED=true", "GATEWAY_API_KEYS="), want: "ADMIN_ENABLED=true needs GATEWAY_API_KEYS"},
		{name: "production without tls refused", env: with(prod, "ADMIN_ENABLED=true"), want: "ADMIN_ENABLED=true in production needs TLS"},
		{name: "production behind a trusted proxy valid", env: with(prod, "ADMIN_ENABLED=true", "GATEWAY_TRUSTED_PROXIES=10.0.0.5")},
		{name: "production disabled needs nothing", env: with(prod, "ADMIN_ENABLED=false")},
		{name: "lifetime too short", env: with(dev, "ADMIN_SESSION_LIFETIME=30s"), want: "ADMIN_SESSION_LIFETIME must be between 1m0s and 24h0m0s; got 30s"},
		{name: "lifetime too long", env: with(dev, "ADMIN_SESSION_LIFETIME=25h"), want: "ADMIN_SESSION_LIFETIME must be between"},
		{name: "lifetime bound valid", env: with(dev, "ADMIN_SESSION_LIFETIME=24h")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(nil, lookup(tc.env))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestAdminDefaults(t *testing.T) {
	for _, env := range []map[string]string{{}, prodEnv()} {
		c, err := Load(nil, lookup(env))
		if err != nil {
			t.Fatal(err)
		}
		if c.AdminEnabled {
			t.Errorf("%s: admin console enabled by default", c.Env)
		}
		if c.AdminSessionLifetime != 8*time.Hour {
			t.Errorf("%s: ADMIN_SESSION_LIFETIME default %s, want 8h", c.Env, c.AdminSessionLifetime)
		}
	}
}
