package config

import (
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sessiongate/sessiongate/redisconn"
)

// loadRedis fills c.Redis and reports syntax problems. REDIS_HOST,
// REDIS_PORT and REDIS_DB rewrite those parts of REDIS_URL; REDIS_USERNAME
// and REDIS_PASSWORD (else the URL's credentials) go to the Username and
// Password fields, which also serve Sentinel and Cluster (REDIS_ADDRS).
func loadRedis(s *source, c *Config) {
	r := &c.Redis
	r.Addrs = s.list("REDIS_ADDRS")
	r.MasterName = s.str("REDIS_MASTER_NAME")
	// REDIS_SENTINEL_ADDRS is the clearer spelling of REDIS_ADDRS with
	// REDIS_MASTER_NAME; both lists at once would leave it unclear which
	// servers are the sentinels, so that is refused.
	if sentinels := s.list("REDIS_SENTINEL_ADDRS"); len(sentinels) > 0 {
		switch {
		case len(r.Addrs) > 0:
			s.problemf("REDIS_SENTINEL_ADDRS and REDIS_ADDRS are both set: list the sentinels in REDIS_SENTINEL_ADDRS only (REDIS_ADDRS is for Redis Cluster nodes)")
		case r.MasterName == "":
			s.problemf("REDIS_SENTINEL_ADDRS is set, so REDIS_MASTER_NAME must name the master the sentinels monitor (e.g. mymaster)")
		default:
			r.Addrs = sentinels
		}
	}
	r.SentinelUsername = s.str("REDIS_SENTINEL_USERNAME")
	r.SentinelPassword = s.str("REDIS_SENTINEL_PASSWORD")
	var attempts int
	s.intField("REDIS_CONNECT_ATTEMPTS", &attempts)
	r.ConnectAttempts = attempts
	s.dur("REDIS_BACKOFF_MIN", &r.BackoffMin)
	s.dur("REDIS_BACKOFF_MAX", &r.BackoffMax)

	raw := s.str("REDIS_URL")
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Opaque != "" {
		s.problemf("REDIS_URL must be a redis:// or rediss:// URL such as redis://localhost:6379/0 (value hidden: it may hold a password)")
		r.URL = s.vars["REDIS_URL"].def
		return
	}
	if u.User != nil {
		r.Username = u.User.Username()
		r.Password, _ = u.User.Password()
	}
	if v, ok := s.lookup("REDIS_USERNAME"); ok {
		r.Username = v
	}
	if v, ok := s.lookup("REDIS_PASSWORD"); ok {
		r.Password = v
	}

	host, port := u.Hostname(), u.Port()
	if v, ok := s.lookup("REDIS_HOST"); ok {
		if strings.ContainsAny(v, "/@ ") || strings.Count(v, ":") == 1 {
			s.problemf("REDIS_HOST must be a host name or IP address without port; got %s", s.shown("REDIS_HOST", v))
		} else {
			host = strings.Trim(v, "[]")
		}
	}
	if v, ok := s.lookup("REDIS_PORT"); ok {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 65535 {
			s.problemf("REDIS_PORT must be a port number 1-65535; got %s", s.shown("REDIS_PORT", v))
		} else {
			port = v
		}
	}
	if host == "" {
		host = "localhost"
	}
	if port == "" {
		port = "6379"
	}
	u.Host = net.JoinHostPort(host, port)

	if path := strings.Trim(u.Path, "/"); path != "" {
		if n, err := strconv.Atoi(path); err != nil || n < 0 {
			s.problemf("REDIS_URL path must be a database number such as /0 (value hidden: it may hold a password)")
		} else {
			r.DB = n
		}
	}
	if v, ok := s.lookup("REDIS_DB"); ok {
		if n, err := strconv.Atoi(v); err != nil || n < 0 {
			s.problemf("REDIS_DB must be a database number 0 or more; got %s", s.shown("REDIS_DB", v))
		} else {
			r.DB = n
			u.Path = "/" + v
		}
	}
	r.URL = u.String()
}

// redisProblems checks the Redis settings as a whole.
func (c Config) redisProblems(add func(format string, args ...any)) {
	r := c.Redis
	if u, err := url.Parse(r.URL); len(r.Addrs) == 0 && (err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "") {
		add("REDIS_URL must be a redis:// or rediss:// URL with a host")
	}
	for i, a := range r.Addrs {
		if _, port, err := net.SplitHostPort(a); err != nil || !validPort(port, false) {
			add("%s entry %d must be host:port; got %q", addrsVar(r), i+1, clip(a))
		}
	}
	if err := r.Validate(); err != nil && len(r.Addrs) == 0 && r.URL != "" && r.MasterName == "" && r.SentinelUsername == "" && r.SentinelPassword == "" {
		// The checks above cover the common mistakes with clearer words;
		// this catches what only go-redis's own URL parser refuses (an
		// unknown query option, say). The error never quotes the URL.
		add("REDIS_URL is not accepted by the Redis client: %v", err)
	}
	if r.MasterName != "" && len(r.Addrs) == 0 {
		add("REDIS_MASTER_NAME is set, so REDIS_SENTINEL_ADDRS must list the Sentinel addresses (host:26379,...)")
	}
	if r.MasterName == "" && (r.SentinelUsername != "" || r.SentinelPassword != "") {
		add("REDIS_SENTINEL_USERNAME and REDIS_SENTINEL_PASSWORD apply to Sentinel only: set REDIS_SENTINEL_ADDRS and REDIS_MASTER_NAME, or unset them")
	}
	if u, err := url.Parse(r.URL); err == nil && len(r.Addrs) == 0 && (u.Query().Has("master_name") || u.Query().Has("addr")) {
		// go-redis's failover URL (ParseFailoverURL) is a different parser
		// with the sentinels' credentials in the userinfo; REDIS_URL is a
		// single server's URL, so point at the variables instead.
		add("REDIS_URL cannot describe Sentinel (the master_name/addr URL form is not supported): set REDIS_SENTINEL_ADDRS and REDIS_MASTER_NAME")
	}
	if r.MasterName == "" && len(r.Addrs) > 1 && r.DB != 0 {
		add("REDIS_DB must be 0 with Redis Cluster (several REDIS_ADDRS); got %d", r.DB)
	}
	if r.DB < 0 {
		add("REDIS_DB must be 0 or more; got %d", r.DB)
	}
	if r.ConnectAttempts < 1 {
		add("REDIS_CONNECT_ATTEMPTS must be at least 1; got %d", r.ConnectAttempts)
	}
	if r.BackoffMin <= 0 {
		add("REDIS_BACKOFF_MIN must be positive; got %s", r.BackoffMin)
	}
	if r.BackoffMax < r.BackoffMin {
		add("REDIS_BACKOFF_MAX (%s) must not be shorter than REDIS_BACKOFF_MIN (%s)", r.BackoffMax, r.BackoffMin)
	}
	if r.BackoffMax > 10*time.Minute {
		add("REDIS_BACKOFF_MAX must be at most 10m; got %s", r.BackoffMax)
	}
	if c.KeyPrefix == "" || len(c.KeyPrefix) > 64 || strings.IndexFunc(c.KeyPrefix, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		add("REDIS_KEY_PREFIX must be 1-64 characters without spaces or control characters; got %q", clip(c.KeyPrefix))
	}
}

// validPort reports whether p is a port number; zeroOK allows 0 (any port).
func validPort(p string, zeroOK bool) bool {
	n, err := strconv.Atoi(p)
	if err != nil || n > 65535 || n < 0 {
		return false
	}
	return n > 0 || zeroOK
}

// addrsVar names the variable r.Addrs most likely came from, for messages.
func addrsVar(r redisconn.Config) string {
	if r.MasterName != "" {
		return "REDIS_SENTINEL_ADDRS (or REDIS_ADDRS)"
	}
	return "REDIS_ADDRS"
}
