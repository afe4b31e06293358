package redisconn

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

// FuzzConfigURL checks that any URL either builds options or fails with
// ErrInvalidConfig, never panics, and that neither Redacted nor the error
// ever shows the password.
func FuzzConfigURL(f *testing.F) {
	f.Add("redis://:pw-secret@localhost:6379/0", "")
	f.Add("rediss://user:pw-secret@[::1]:6380/3?dial_timeout=1s", "")
	f.Add("redis://h:port", "override-secret")
	f.Add("unix:///tmp/x.sock", "")
	f.Add("redis://%zz@h", "")
	f.Fuzz(func(t *testing.T, raw, password string) {
		c := Config{URL: raw, Password: password}.withDefaults()
		secrets := []string{password}
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			p, _ := u.User.Password()
			secrets = append(secrets, p)
		}
		_, err := c.universalOptions()
		if err != nil && !errors.Is(err, ErrInvalidConfig) {
			t.Fatalf("error does not wrap ErrInvalidConfig: %v", err)
		}
		red := c.Redacted()
		for _, s := range secrets {
			if len(s) < 4 || strings.Contains(strings.Replace(raw, s, "", 1), s) {
				continue // too short, or also part of the host or path
			}
			if strings.Contains(red, s) {
				t.Fatalf("Redacted %q shows the password %q", red, s)
			}
			if err != nil && strings.Contains(err.Error(), s) {
				t.Fatalf("error %q shows the password %q", err, s)
			}
		}
	})
}
