package gateway

import (
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// newWebhookClient is the login webhook's HTTP client. Every phase of a call
// is bounded on its own (the caller's context bounds the whole), so a
// half-open peer cannot hold a login and its goroutine. CheckRedirect hands
// back a 3xx as the answer instead of following it: a 307/308 would re-POST
// the user's credentials to wherever the Location header points, a 301-303
// would turn the login into a GET. Proxies come from the environment
// (HTTPS_PROXY, NO_PROXY) as with net/http's default transport.
func newWebhookClient(timeout time.Duration) *http.Client {
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
			MaxIdleConnsPerHost:   32, // logins go to one host: keep connections for bursts
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
