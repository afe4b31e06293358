package redisconn

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config describes the Redis deployment and the connection policy. It is a
// value; the zero value of each field means its default.
type Config struct {
	// URL is a redis:// or rediss:// (TLS) URL, used when Addrs is empty.
	// Defaults to redis://localhost:6379.
	URL string
	// Addrs are host:port seeds. Several without MasterName select Redis
	// Cluster; with MasterName they are the Sentinel addresses.
	Addrs []string
	// MasterName is the Sentinel master name; set it to use Sentinel.
	MasterName string
	// Username and Password authenticate; when set they override the ones in
	// URL.
	Username, Password string
	// SentinelUsername and SentinelPassword authenticate to the sentinels
	// (Sentinel mode only), whose `requirepass`/ACL are their own: go-redis
	// does not send Username/Password to them. Default to none (no AUTH).
	SentinelUsername, SentinelPassword string
	// DB is the logical database; when non-zero it overrides the one in URL.
	// Redis Cluster supports only 0.
	DB int
	// ConnectAttempts is the PING budget of [Manager.Connect], and the number
	// of failed runtime checks after which [Manager.Run] reports StateDown.
	// Defaults to 10.
	ConnectAttempts int
	// BackoffMin and BackoffMax bound the exponential backoff between
	// attempts. Default to 1s and 10s.
	BackoffMin, BackoffMax time.Duration
	// CheckInterval is the period of the runtime PING of [Manager.Run].
	// Defaults to 2s.
	CheckInterval time.Duration
	// DialTimeout bounds each dial and each health PING. Defaults to 2s.
	DialTimeout time.Duration
}

const defaultURL = "redis://localhost:6379"

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.URL == "" {
		c.URL = defaultURL
	}
	if c.ConnectAttempts == 0 {
		c.ConnectAttempts = 10
	}
	if c.BackoffMin == 0 {
		c.BackoffMin = time.Second
	}
	if c.BackoffMax == 0 {
		c.BackoffMax = 10 * time.Second
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = 2 * time.Second
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 2 * time.Second
	}
	return c
}

// check reports problems that make c unusable. c has its defaults applied.
func (c Config) check() error {
	var errs []error
	if c.ConnectAttempts < 1 {
		errs = append(errs, fmt.Errorf("connect attempts must be at least 1; got %d", c.ConnectAttempts))
	}
	if c.BackoffMin <= 0 || c.BackoffMax < c.BackoffMin {
		errs = append(errs, fmt.Errorf("backoff must satisfy 0 < min <= max; got min %s, max %s", c.BackoffMin, c.BackoffMax))
	}
	if c.CheckInterval <= 0 {
		errs = append(errs, fmt.Errorf("check interval must be positive; got %s", c.CheckInterval))
	}
	if c.DialTimeout <= 0 {
		errs = append(errs, fmt.Errorf("dial timeout must be positive; got %s", c.DialTimeout))
	}
	if c.DB < 0 {
		errs = append(errs, fmt.Errorf("db must not be negative; got %d", c.DB))
	}
	if c.MasterName != "" && len(c.Addrs) == 0 {
		errs = append(errs, errors.New("master name (Sentinel) needs the Sentinel addresses in Addrs"))
	}
	if c.MasterName == "" && (c.SentinelUsername != "" || c.SentinelPassword != "") {
		errs = append(errs, errors.New("sentinel credentials are set without a master name (Sentinel)"))
	}
	if c.MasterName == "" && len(c.Addrs) > 1 && c.DB != 0 {
		errs = append(errs, fmt.Errorf("redis cluster supports only db 0; got %d", c.DB))
	}
	for _, a := range c.Addrs {
		if a == "" || strings.ContainsAny(a, " /@") {
			errs = append(errs, fmt.Errorf("address %q is not host:port", a))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
}

// Validate reports whether [New] would accept c: the same checks, the same
// URL parser, no I/O. Errors wrap [ErrInvalidConfig] and never quote a
// password. config uses it so that a configuration it accepts always builds.
func (c Config) Validate() error {
	c = c.withDefaults()
	if err := c.check(); err != nil {
		return err
	}
	_, err := c.universalOptions()
	return err
}

// universalOptions builds the go-redis options for c (defaults applied).
// It does no I/O.
func (c Config) universalOptions() (*redis.UniversalOptions, error) {
	o := &redis.UniversalOptions{
		Addrs:      c.Addrs,
		MasterName: c.MasterName,
		Username:   c.Username,
		Password:   c.Password,
		DB:         c.DB,

		SentinelUsername: c.SentinelUsername,
		SentinelPassword: c.SentinelPassword,
	}
	if len(c.Addrs) == 0 {
		u, err := parseURL(c.URL, c.Password)
		if err != nil {
			return nil, err
		}
		o.Addrs = []string{u.Addr}
		o.TLSConfig = u.TLSConfig
		o.ClientName = u.ClientName
		o.Protocol = u.Protocol
		o.MaxRetries = u.MaxRetries
		o.MinRetryBackoff, o.MaxRetryBackoff = u.MinRetryBackoff, u.MaxRetryBackoff
		o.ReadTimeout, o.WriteTimeout = u.ReadTimeout, u.WriteTimeout
		o.PoolFIFO, o.PoolSize, o.PoolTimeout = u.PoolFIFO, u.PoolSize, u.PoolTimeout
		o.MinIdleConns, o.MaxIdleConns, o.MaxActiveConns = u.MinIdleConns, u.MaxIdleConns, u.MaxActiveConns
		o.ConnMaxIdleTime, o.ConnMaxLifetime = u.ConnMaxIdleTime, u.ConnMaxLifetime
		if o.Username == "" {
			o.Username = u.Username
		}
		if o.Password == "" {
			o.Password = u.Password
		}
		if o.DB == 0 {
			o.DB = u.DB
		}
	}
	o.DialTimeout = c.DialTimeout
	// One dial per attempt: the Manager owns the retry budget and its
	// backoff, so go-redis must not multiply attempts behind its back.
	o.DialerRetries = 1
	// Honour ctx deadlines on socket reads/writes, so a hung Redis cannot
	// hold a health PING past its timeout.
	o.ContextTimeoutEnabled = true
	// No CLIENT SETINFO on each new connection: one round trip less, and no
	// spurious command errors against servers older than 7.2.
	o.DisableIdentity = true
	return o, nil
}

// parseURL parses a redis:// or rediss:// URL without ever quoting it (or
// password) in the error.
func parseURL(raw, password string) (*redis.Options, error) {
	scheme, _, ok := strings.Cut(raw, "://")
	if !ok || (scheme != "redis" && scheme != "rediss") {
		return nil, fmt.Errorf("%w: URL must start with redis:// or rediss://", ErrInvalidConfig)
	}
	opt, err := redis.ParseURL(raw)
	if err != nil {
		pw := ""
		if u, perr := url.Parse(raw); perr == nil {
			pw, _ = u.User.Password()
		}
		return nil, fmt.Errorf("%w: bad URL: %s", ErrInvalidConfig, redactText(err.Error(), raw, pw, password))
	}
	return opt, nil
}

// Redacted describes where c points without its password, e.g.
// "redis://:***@host:6379/0", "redis-cluster://a:7000,b:7001" or
// "redis-sentinel://:***@s1:26379,s2:26379/mymaster/0".
func (c Config) Redacted() string {
	c = c.withDefaults()
	userinfo := func(user string, hasPassword bool) string {
		switch {
		case hasPassword:
			return user + ":***@"
		case user != "":
			return user + "@"
		}
		return ""
	}
	switch {
	case c.MasterName != "":
		return "redis-sentinel://" + userinfo(c.Username, c.Password != "") + strings.Join(c.Addrs, ",") +
			"/" + c.MasterName + "/" + strconv.Itoa(c.DB)
	case len(c.Addrs) > 1:
		return "redis-cluster://" + userinfo(c.Username, c.Password != "") + strings.Join(c.Addrs, ",")
	case len(c.Addrs) == 1:
		return "redis://" + userinfo(c.Username, c.Password != "") + c.Addrs[0] + "/" + strconv.Itoa(c.DB)
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
		return "(invalid redis URL)"
	}
	user := c.Username
	if user == "" && u.User != nil {
		user = u.User.Username()
	}
	_, urlHasPw := u.User.Password()
	hasPw := c.Password != "" || urlHasPw
	db := c.DB
	if db == 0 {
		if n, err := strconv.Atoi(strings.Trim(u.Path, "/")); err == nil {
			db = n
		}
	}
	host := u.Host
	if host == "" {
		host = "localhost:6379"
	} else if u.Port() == "" {
		host += ":6379"
	}
	return u.Scheme + "://" + userinfo(url.PathEscape(user), hasPw) + host + "/" + strconv.Itoa(db)
}
