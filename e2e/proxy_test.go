//go:build e2e

package e2e

import (
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/e2e/internal/cluster"
)

// Behind the real haproxy and the real nginx: a client cannot pick its own
// address with X-Forwarded-For (or X-Real-IP) to escape the per-IP rate
// limit or to forge the address the logs show. The load balancer replaces
// those headers, and the gateways trust X-Forwarded-For from its address
// only.
func TestForwardedForSpoofingBehindLB(t *testing.T) { forEachLB(t, testForwardedForSpoofingBehindLB) }

func testForwardedForSpoofingBehindLB(t *testing.T, lb string) {
	// One login per client address, then ~17 minutes to the next token.
	tc := startCluster(t, cluster.Options{LB: lb, Instances: 1, Env: map[string]string{"RATE_LIMIT_RPS": "0.001", "RATE_LIMIT_BURST": "1"}})
	login := func(spoofed string) int {
		t.Helper()
		hdr := http.Header{"X-Forwarded-For": {spoofed}, "X-Real-Ip": {spoofed}, "Origin": {tc.URL()}}
		return tc.do(http.MethodPost, tc.URL()+"/auth/login", hdr, map[string]string{"user_id": "spoofer"}, nil)
	}
	if code := login("198.51.100.1"); code != http.StatusOK {
		t.Fatalf("first login: HTTP %d", code)
	}
	if code := login("198.51.100.2"); code != http.StatusTooManyRequests {
		t.Fatalf("a login claiming another X-Forwarded-For got HTTP %d, want 429: the spoofed address bought a fresh rate-limit bucket", code)
	}
	logs := tc.Gateways[0].LogPath
	eventually(t, 10*time.Second, "the gateway logs both logins under the real client address", func() error {
		if !logContains([]string{logs}, `"msg":"http request"`, `"path":"/auth/login"`, `"status":200`, `"ip":"127.0.0.1"`) ||
			!logContains([]string{logs}, `"rate limited"`, `"ip":"127.0.0.1"`) {
			return errors.New("lines not there yet")
		}
		return nil
	})
	b, err := os.ReadFile(logs)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "198.51.100.") {
		t.Fatalf("a spoofed address reached the gateway's log:\n%s", grepLog(string(b), "198.51.100."))
	}
}

func grepLog(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
