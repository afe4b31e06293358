package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("cluster: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// portFree reports whether 127.0.0.1:port can be listened on right now.
func portFree(port int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// newHTTPClient is for health polling; it accepts the throwaway TLS certificate.
func newHTTPClient() *http.Client {
	return &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // local throwaway certificate
			DisableKeepAlives: true,
		},
	}
}

// poll calls fn every interval until it returns nil or ctx is done; it
// returns the last error wrapped in ErrNotReady.
func poll(ctx context.Context, interval time.Duration, what string, fn func() error) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrExited) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s: %v", ErrNotReady, what, err)
		case <-t.C:
		}
	}
}

// getStatus GETs url and returns the status code.
func getStatus(ctx context.Context, c *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
