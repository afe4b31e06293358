package config

import (
	"errors"
	"flag"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/redisconn"
)

// FuzzLoad feeds arbitrary text to one variable (chosen by index) on top of a
// valid development or production environment, and to the argument list.
// Load must never panic; a Config it accepts must pass Validate, and its
// log fields must never contain the secrets.
func FuzzLoad(f *testing.F) {
	idx := func(name string) uint8 {
		for i, v := range variables() {
			if v.name == name {
				return uint8(i)
			}
		}
		f.Fatalf("no variable %s", name)
		return 0
	}
	f.Add(idx("GATEWAY_ENV"), "production", false, "")
	f.Add(idx("REDIS_URL"), "redis://:pw@[::1]:6379/3?dial_timeout=1s", true, "")
	f.Add(idx("REDIS_HOST"), "::1", false, "--redis-port=6380")
	f.Add(idx("SESSION_ENCRYPTION_KEY"), strings.Repeat("ab", 32)+","+strings.Repeat("cd", 32), true, "")
	f.Add(idx("SESSION_ENCRYPTION_KEY"), "zz", false, "")
	f.Add(idx("GATEWAY_ALLOWED_ORIGINS"), "https://a.test:443,http://[::1]:8080", false, "")
	f.Add(idx("WS_MAX_MESSAGE_BYTES"), "-9223372036854775808", true, "")
	f.Add(idx("RATE_LIMIT_RPS"), "1e309", false, "")
	f.Add(idx("REDIS_ADDRS"), "a:1,b:2", true, "--redis-master-name=m")
	f.Add(idx("GATEWAY_ADDR"), "[::]:0", false, "-h")
	f.Add(idx("GATEWAY_TRUSTED_PROXIES"), "10.0.0.0/8,::1,0.0.0.0/0", true, "")
	f.Add(idx("GATEWAY_TRUST_PROXY"), "true", true, "")
	f.Add(idx("GATEWAY_METRICS_ADDR"), "127.0.0.1:9090", true, "")
	f.Add(idx("AUTH_WEBHOOK_URL"), "http://auth.internal/login", true, "")
	f.Fuzz(func(t *testing.T, idx uint8, value string, production bool, arg string) {
		vars := variables()
		v := vars[int(idx)%len(vars)]
		env := map[string]string{}
		if production {
			env = prodEnv()
		}
		env[v.name] = value
		var args []string
		if arg != "" {
			args = strings.Fields(arg)
		}
		c, err := Load(args, lookup(env))
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			if production && strings.Contains(err.Error(), testSecret) {
				t.Fatalf("error leaks the secret: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Load accepted a config Validate refuses: %v", err)
		}
		m, err := redisconn.New(c.Redis, nil)
		if err != nil {
			t.Fatalf("Load accepted Redis settings redisconn refuses: %v", err)
		}
		_ = m.Close()
		_ = c.LogFields()
		_ = c.EffectiveCookieName()
		if c.Production() && (c.EphemeralSecrets || c.UsesExampleSecrets() || !c.CookieSecure || c.AuthMode != AuthModeWebhook ||
			!strings.HasPrefix(strings.ToLower(c.AuthWebhookURL), "https://")) {
			t.Fatalf("production accepted unsafe settings: %+v", c.LogFields())
		}
		for _, p := range c.TrustedProxies {
			if c.Production() && p.Bits() == 0 {
				t.Fatalf("production trusts every address as a proxy: %v", c.TrustedProxies)
			}
		}
	})
}
