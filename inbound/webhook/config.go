package webhook

import (
	"fmt"
	"net/url"
	"time"
)

// DefaultTimeout is the default bound of one POST (INBOUND_WEBHOOK_TIMEOUT).
const DefaultTimeout = 10 * time.Second

// MaxResponseBytes is the most of a response body the forwarder reads: a
// 2xx body over it is an error, a longer error body is clipped.
const MaxResponseBytes = 64 << 10

// Config is the forwarder's configuration. It is a value; zero fields but
// URL and Secret mean their default.
type Config struct {
	// URL receives one POST per message (INBOUND_WEBHOOK_URL): an http://
	// or https:// URL with a host. Required.
	URL string
	// Secret keys the HMAC-SHA256 signature of each request
	// (INBOUND_WEBHOOK_SECRET). Required; the application holds the same.
	Secret []byte
	// Timeout bounds one POST from connecting to the end of the response
	// body, and one reply's delivery (INBOUND_WEBHOOK_TIMEOUT). Defaults
	// to [DefaultTimeout].
	Timeout time.Duration
	// Now is the clock of the X-Sessiongate-Timestamp header. Defaults to
	// time.Now; tests pass a fake clock.
	Now func() time.Time
}

// withDefaults checks c and returns it with its defaults applied and the
// URL parsed.
func (c Config) withDefaults() (Config, *url.URL, error) {
	if c.URL == "" {
		return c, nil, fmt.Errorf("%w: no URL", ErrConfig)
	}
	// The URL may carry credentials: errors never quote it.
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return c, nil, fmt.Errorf("%w: the URL must be http:// or https:// with a host", ErrConfig)
	}
	if len(c.Secret) == 0 {
		return c, nil, fmt.Errorf("%w: no secret", ErrConfig)
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, u, nil
}
