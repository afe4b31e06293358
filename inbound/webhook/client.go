package webhook

import (
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// NewClient is an HTTP client suited to the forwarder: every phase of a
// call bounded by timeout (the forwarder's context bounds the whole),
// TLS 1.2 at least, proxies from the environment (HTTPS_PROXY, NO_PROXY),
// and no redirects followed. [New] uses it when given no client.
func NewClient(timeout time.Duration) *http.Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   timeout,
			ResponseHeaderTimeout: timeout,
			ExpectContinueTimeout: time.Second,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          64,
			MaxIdleConnsPerHost:   32, // one host, a worker's concurrency of requests at once
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: noRedirect,
	}
}

// noRedirect hands a 3xx back as the answer: following a 307/308 would
// re-POST a user's message, signed, to wherever Location points.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
