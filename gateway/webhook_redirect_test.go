package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder is a second server a redirect points at: it records every
// request and would log anyone in.
type recorder struct {
	mu     sync.Mutex
	bodies []string
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	rc.bodies = append(rc.bodies, r.Method+" "+string(b))
	rc.mu.Unlock()
	_, _ = w.Write([]byte(`{"user_id":"mallory"}`))
}

func (rc *recorder) requests() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.bodies...)
}

// A webhook answering with a redirect must not make the gateway re-send the
// credentials anywhere: the login is a 502 and the redirect target sees
// nothing. The client follows redirects inside Authenticate, before the login
// answers, so once the answer is in, the target's request count is final.
func TestWebhookRedirectNotFollowed(t *testing.T) {
	for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			target := &recorder{}
			ts := httptest.NewServer(target)
			t.Cleanup(ts.Close)
			hook := webhookServer(t, func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, ts.URL+"/steal", status)
			})

			// Directly: an upstream failure.
			a := &WebhookAuthenticator{URL: hook, Timeout: 5 * time.Second}
			_, err := a.Authenticate(context.Background(), []byte(`{"user_id":"alice","password":"pw"}`))
			if !errors.Is(err, ErrUpstream) || !strings.Contains(err.Error(), "redirect") {
				t.Fatalf("Authenticate = %v, want ErrUpstream naming the redirect", err)
			}

			// Through /auth/login: a 502 JSON error.
			g := startGateway(t, gwOptions{auth: &WebhookAuthenticator{URL: hook, Timeout: 5 * time.Second}})
			req, _ := http.NewRequest(http.MethodPost, g.http.URL+"/auth/login", strings.NewReader(`{"user_id":"alice","password":"secret-pw"}`))
			req.Header.Set("Content-Type", "application/json")
			resp, err := g.client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadGateway || decodeError(t, b) != codeBadGateway {
				t.Fatalf("login: %d %s, want 502 bad_gateway", resp.StatusCode, b)
			}
			if len(resp.Cookies()) != 0 {
				t.Fatalf("login through a redirect set a cookie: %v", resp.Cookies())
			}
			if got := target.requests(); len(got) != 0 {
				t.Fatalf("the redirect target received %d request(s): %q", len(got), got)
			}
		})
	}
}

func TestWebhookClientRefusesRedirects(t *testing.T) {
	c := newWebhookClient(time.Second)
	if c.CheckRedirect == nil || c.Jar != nil {
		t.Fatal("webhook client must refuse redirects and keep no cookies")
	}
	tr, ok := c.Transport.(*http.Transport)
	if !ok || tr.ResponseHeaderTimeout != time.Second || tr.TLSHandshakeTimeout != time.Second {
		t.Fatalf("webhook transport lacks its timeouts: %#v", c.Transport)
	}
}
