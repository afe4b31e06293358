// Package httpclient builds the HTTP client of the gateway's outgoing
// webhooks (the login webhook, the inbound forwarder).
package httpclient

import (
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// New returns a client with every phase of a call bounded by timeout on
// its own (the caller's context bounds the whole), so a half-open peer
// cannot hold a call and its goroutine; TLS 1.2 at least; proxies from the
// environment (HTTPS_PROXY, NO_PROXY) as with net/http's default
// transport; and no redirect followed: a 3xx is handed back as the
// answer, since following a 307/308 would re-POST the body (credentials,
// a signed message) to wherever Location points, and a 301-303 would turn
// the POST into a GET.
func New(timeout time.Duration) *http.Client {
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
			MaxIdleConnsPerHost:   32, // one host: keep connections for bursts
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: NoRedirect,
	}
}

// NoRedirect is a CheckRedirect that hands a 3xx back as the answer.
func NoRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
