package config

import "time"

// Bounds of ADMIN_SESSION_LIFETIME: an admin login shorter than a minute
// is useless, one longer than a day outlives a working day's key custody.
const (
	minAdminSessionLifetime = time.Minute
	maxAdminSessionLifetime = 24 * time.Hour
)

// adminProblems checks the admin console's settings. The console holds a
// server API key's power behind a cookie, so production serves it over
// HTTPS only. The gateway itself listens in plain HTTP (it has no TLS
// listener): a request is HTTPS when a trusted proxy says so with
// X-Forwarded-Proto, hence production needs GATEWAY_TRUSTED_PROXIES (the
// gateway also refuses, per request, any /admin request that did not come
// over HTTPS).
func (c Config) adminProblems(add func(string, ...any)) {
	if c.AdminSessionLifetime < minAdminSessionLifetime || c.AdminSessionLifetime > maxAdminSessionLifetime {
		add("ADMIN_SESSION_LIFETIME must be between %s and %s; got %s", minAdminSessionLifetime, maxAdminSessionLifetime, c.AdminSessionLifetime)
	}
	if !c.AdminEnabled {
		return
	}
	if len(c.APIKeys) == 0 {
		add("ADMIN_ENABLED=true needs GATEWAY_API_KEYS: the admin console's login is a server API key")
	}
	if c.Production() && len(c.TrustedProxies) == 0 {
		add("ADMIN_ENABLED=true in production needs TLS: the gateway listens in plain HTTP, so terminate TLS at a load balancer, list it in GATEWAY_TRUSTED_PROXIES and have it send X-Forwarded-Proto: https (the console refuses any request that did not come over HTTPS)")
	}
}
