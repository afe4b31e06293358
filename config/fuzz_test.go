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
	f.Add(uint8(0), "production", false, "")
	f.Add(uint8(9), "redis://:pw@[::1]:6379/3?dial_timeout=1s", true, "")
	f.Add(uint8(10), "::1", false, "--redis-port=6380")
	f.Add(uint8(22), strings.Repeat("ab", 32)+","+strings.Repeat("cd", 32), true, "")
	f.Add(uint8(22), "zz", false, "")
	f.Add(uint8(4), "https://a.test:443,http://[::1]:8080", false, "")
	f.Add(uint8(33), "-9223372036854775808", true, "")
	f.Add(uint8(38), "1e309", false, "")
	f.Add(uint8(15), "a:1,b:2", true, "--redis-master-name=m")
	f.Add(uint8(1), "[::]:0", false, "-h")
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
		if c.Production() && (c.EphemeralSecrets || c.UsesExampleSecrets() || !c.CookieSecure || c.AuthMode != AuthModeWebhook) {
			t.Fatalf("production accepted unsafe settings: %+v", c.LogFields())
		}
	})
}
