package gateway

import (
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/config"
)

// TestConfigFrom: the process configuration reaches the gateway's own
// Config, field by field where a mistake would be silent.
func TestConfigFrom(t *testing.T) {
	env := testEnv(map[string]string{
		"GATEWAY_METRICS_ADDR":           "127.0.0.1:0",
		"WS_MAX_CONNECTIONS_PER_SESSION": "3",
		"WS_INBOUND_RATE":                "7",
		"DRAIN_WINDOW":                   "3s",
		"COOKIE_SAMESITE":                "strict",
		"HTTP_IDLE_TIMEOUT":              "42s",
	})
	cfg, err := config.Load(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	g := ConfigFrom(cfg).withDefaults()
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"instance", g.InstanceID, "test-a"},
		{"conn instance", g.Conn.InstanceID, "test-a"},
		{"metrics elsewhere", g.MetricsElsewhere, true},
		{"session cap", g.Conn.MaxConnectionsPerSession, 3},
		{"inbound rate", g.Conn.InboundRate, 7.0},
		{"drain window", g.Conn.DrainWindow, 3 * time.Second},
		{"same site", g.Cookie.SameSite, "strict"},
		{"cookie name", g.Cookie.Name, "sg_session"},
		{"idle timeout", g.HTTPIdleTimeout, 42 * time.Second},
		{"api keys", len(g.APIKeys), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestConfigDefaults: a zero Config is usable, with the documented defaults.
func TestConfigDefaults(t *testing.T) {
	g := Config{}.withDefaults()
	if g.InstanceID != "gateway" || g.Cookie.Name != "sg_session" || g.Cookie.SameSite != "lax" ||
		g.HTTPReadTimeout != 10*time.Second || g.HTTPWriteTimeout != 15*time.Second ||
		g.HTTPIdleTimeout != 120*time.Second || g.ShutdownTimeout != 30*time.Second {
		t.Fatalf("defaults: %+v", g)
	}
}
