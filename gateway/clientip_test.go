package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	ranges := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	lbs := ranges("10.0.3.0/28", "fd00::/8")
	tests := []struct {
		name    string
		trusted []netip.Prefix
		peer    string
		xff     []string // one entry per header line
		want    string
	}{
		{name: "no proxies: peer", peer: "203.0.113.9:1234", want: "203.0.113.9"},
		{name: "no proxies: spoofed XFF ignored", peer: "203.0.113.9:1234", xff: []string{"198.51.100.1"}, want: "203.0.113.9"},
		{name: "no proxies: loopback peer's XFF ignored too", peer: "127.0.0.1:1234", xff: []string{"198.51.100.1"}, want: "127.0.0.1"},
		{name: "untrusted peer's XFF ignored", trusted: lbs, peer: "203.0.113.9:1234", xff: []string{"198.51.100.1"}, want: "203.0.113.9"},
		{name: "private but untrusted peer's XFF ignored", trusted: lbs, peer: "192.168.1.20:1234", xff: []string{"198.51.100.1"}, want: "192.168.1.20"},
		{name: "trusted peer without XFF is the client", trusted: lbs, peer: "10.0.3.2:1234", want: "10.0.3.2"},
		{name: "trusted peer's XFF used", trusted: lbs, peer: "10.0.3.2:1234", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "client-prepended entry skipped", trusted: lbs, peer: "10.0.3.2:1234", xff: []string{"6.6.6.6, 198.51.100.1"}, want: "198.51.100.1"},
		{name: "chain of trusted proxies", trusted: lbs, peer: "10.0.3.2:1234", xff: []string{"6.6.6.6, 198.51.100.1, 10.0.3.9, 10.0.3.5"}, want: "198.51.100.1"},
		{name: "chain over several header lines", trusted: lbs, peer: "10.0.3.2:1234", xff: []string{"6.6.6.6", "198.51.100.1", "10.0.3.9"}, want: "198.51.100.1"},
		{name: "untrusted hop in the chain stops the walk", trusted: lbs, peer: "10.0.3.2:1234", xff: []string{"198.51.100.1, 192.0.2.50, 10.0.3.9"}, want: "192.0.2.50"},
		{name: "ipv6 proxy and client", trusted: lbs, peer: "[fd00::7]:1234", xff: []string{"2001:db8::42"}, want: "2001:db8::42"},
		{name: "ipv4-mapped peer", trusted: lbs, peer: "[::ffff:10.0.3.2]:1234", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
		{name: "garbage entry: peer", trusted: lbs, peer: "10.0.3.2:1234", xff: []string{"198.51.100.1, not-an-ip"}, want: "10.0.3.2"},
		{name: "deprecated private ranges: loopback proxy", trusted: ranges("127.0.0.0/8", "10.0.0.0/8"), peer: "127.0.0.1:1234", xff: []string{"198.51.100.1"}, want: "198.51.100.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			r.Header.Set("X-Real-IP", "6.6.6.7") // never read
			if got := (proxies{ranges: tt.trusted}).ipExtractor()(r); got != tt.want {
				t.Fatalf("client IP = %q, want %q", got, tt.want)
			}
		})
	}
}

// Through the real server and its rate limiter: a spoofed X-Forwarded-For
// from a peer that is not a trusted proxy gets no bucket of its own; from a
// trusted proxy each client address has its own.
func TestRateLimitByForwardedClient(t *testing.T) {
	// One token per client, refilled every ~17 minutes: a second request
	// in the same bucket is refused, whatever the machine's speed.
	limits := map[string]string{"RATE_LIMIT_RPS": "0.001", "RATE_LIMIT_BURST": "1"}
	try := func(t *testing.T, g *testGateway, xff string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, g.http.URL+"/ws", nil)
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	t.Run("untrusted peer", func(t *testing.T) {
		env := map[string]string{"GATEWAY_TRUSTED_PROXIES": "10.0.0.0/8"} // the test's 127.0.0.1 is not in it
		for k, v := range limits {
			env[k] = v
		}
		g := startGateway(t, gwOptions{env: env})
		if st := try(t, g, "198.51.100.1"); st == http.StatusTooManyRequests {
			t.Fatalf("first request limited")
		}
		if st := try(t, g, "198.51.100.2"); st != http.StatusTooManyRequests {
			t.Fatalf("spoofed X-Forwarded-For bought a new bucket: %d, want 429", st)
		}
	})
	t.Run("trusted proxy", func(t *testing.T) {
		env := map[string]string{"GATEWAY_TRUSTED_PROXIES": "127.0.0.1"}
		for k, v := range limits {
			env[k] = v
		}
		g := startGateway(t, gwOptions{env: env})
		if st := try(t, g, "198.51.100.1"); st == http.StatusTooManyRequests {
			t.Fatalf("first client limited")
		}
		if st := try(t, g, "198.51.100.2"); st == http.StatusTooManyRequests {
			t.Fatalf("a second client behind the proxy shares the first one's bucket")
		}
		if st := try(t, g, "6.6.6.6, 198.51.100.1"); st != http.StatusTooManyRequests {
			t.Fatalf("a client-prepended address escaped the client's own bucket: %d, want 429", st)
		}
	})
}

func TestTrustedPeer(t *testing.T) {
	p := proxies{ranges: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	for _, tt := range []struct {
		name, peer string
		want       bool
	}{
		{"inside", "10.1.2.3:80", true},
		{"outside", "11.0.0.1:80", false},
		{"mapped inside", "[::ffff:10.1.2.3]:80", true},
		{"no port", "10.1.2.3", true},
		{"garbage", "nope", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tt.peer
			if got := p.trustedPeer(r); got != tt.want {
				t.Fatalf("trustedPeer(%s) = %v, want %v", tt.peer, got, tt.want)
			}
		})
	}
	if (proxies{}).trustedPeer(httptest.NewRequest(http.MethodGet, "/", nil)) {
		t.Fatal("no ranges must trust nobody")
	}
}
