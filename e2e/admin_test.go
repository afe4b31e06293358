//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/e2e/internal/cluster"
)

// fill types text into the input matched by selector.
func (p *page) fill(selector, text string) {
	p.b.t.Helper()
	p.b.must(10*time.Second, "fill", map[string]any{"page": p.name, "selector": selector, "text": text})
}

// screenshotOnFailure saves the page as a PNG in the cluster's log
// directory (kept when the test fails) if t failed.
func (p *page) screenshotOnFailure(t *testing.T, tc *testCluster) {
	t.Cleanup(func() {
		if t.Failed() {
			_, _ = p.b.call(20*time.Second, "screenshot", map[string]any{"page": p.name, "path": filepath.Join(tc.Dir, p.name+".png")})
		}
	})
}

// userTab logs user in from a browser context of its own on the demo page
// and returns the tab, the index of its open socket and its session handle.
func userTab(t *testing.T, b *browser, tc *testCluster, name, user string) (*page, int, string) {
	t.Helper()
	p := b.newContext(name).newPage(name)
	p.goto_(tc.URL() + "/")
	if code := p.login(user, "correct horse"); code != http.StatusOK {
		t.Fatalf("%s: login: HTTP %d", name, code)
	}
	p.reload()
	idx, ws := p.openSocket(generous, 0, name+": welcome")
	if ws.Welcome.UserID != user {
		t.Fatalf("%s: welcome for %q", name, ws.Welcome.UserID)
	}
	var handle string
	p.eval(`fetch('/auth/session').then(r => r.json()).then(s => s.handle)`, &handle)
	if len(handle) != 64 {
		t.Fatalf("%s: handle %q", name, handle)
	}
	return p, idx, handle
}

// waitClosed4500 waits until the tab's socket idx closed with 4500
// (session revoked) and the client library gave up (signed out).
func waitClosed4500(t *testing.T, p *page, idx int) {
	t.Helper()
	var code int
	p.waitFor(generous, p.name+": socket closed by the revocation",
		fmt.Sprintf(`(() => { const c = window.__ws[%d].closed; return c ? c.code : 0; })()`, idx), &code)
	if code != 4500 {
		t.Errorf("%s: socket closed with %d, want 4500", p.name, code)
	}
	p.checkSignedOut(t, generous)
}

// TestAdminConsoleRevokesInChromium: an operator logs in to the admin
// console in Chromium, through the TLS load balancer in front of two
// production instances (so the console's requests land on both, on one
// admin session shared through Redis), finds a user's session and clicks
// Revoke: the user's own tab, another browser, closes with 4500. Then
// "Revoke all sessions" closes every tab of another user. The admin cookie
// is HttpOnly, Secure, SameSite=Strict and scoped to /admin, and neither
// it nor the API key reaches any log (checked at cleanup).
func TestAdminConsoleRevokesInChromium(t *testing.T) {
	hook, hookCA := startAuthWebhook(t)
	tc := startCluster(t, cluster.Options{
		Instances:  2,
		Production: true,
		Env: map[string]string{"AUTH_MODE": "webhook", "AUTH_WEBHOOK_URL": hook, "SSL_CERT_FILE": hookCA,
			"DEMO_ENABLED": "true", "ADMIN_ENABLED": "true"},
	})
	b := startBrowser(t, tc, true)

	grace, graceIdx, graceHandle := userTab(t, b, tc, "grace", "grace")
	grace.screenshotOnFailure(t, tc)

	op := b.newContext("operator")
	con := op.newPage("console")
	con.screenshotOnFailure(t, tc)
	if st := con.goto_(tc.URL() + "/admin/"); st != http.StatusOK {
		t.Fatalf("GET /admin/: HTTP %d", st)
	}
	con.waitFor(generous, "login form", `!document.getElementById('login').hidden`, nil)
	con.fill("#login-key", "not-the-key-0123456789")
	con.click("#login-btn")
	con.waitFor(generous, "wrong key refused", `document.getElementById('login-error').textContent.includes('invalid API key')`, nil)
	con.fill("#login-key", tc.APIKey)
	con.click("#login-btn")
	con.waitFor(generous, "console shown after login", `!document.getElementById('console').hidden`, nil)

	ck := op.sessionCookie(tc, tc.URL()+"/admin/", "__Secure-sg_admin")
	if !ck.HTTPOnly || !ck.Secure || ck.SameSite != "Strict" || ck.Path != "/admin" || ck.Expires <= 0 {
		t.Errorf("admin cookie %+v, want HttpOnly, Secure, SameSite=Strict, Path=/admin, an expiry", ck)
	}
	var docCookie, keyField string
	con.eval(`document.cookie`, &docCookie)
	con.eval(`document.getElementById('login-key').value`, &keyField)
	if strings.Contains(docCookie, "sg_admin") || keyField != "" {
		t.Errorf("the page can read the admin cookie (%q) or still holds the key (%q)", docCookie, keyField)
	}
	var csrf string
	con.eval(`fetch('/admin/api/session').then(r => r.json()).then(s => s.csrf_token)`, &csrf)
	tc.addSecret(csrf, "admin CSRF token")

	// The cluster view: both instances alive.
	con.waitFor(generous, "two alive instances in the cluster view",
		`document.querySelectorAll('#cluster tbody tr[data-state="alive"]').length === 2`, nil)

	// Find grace's session and revoke it.
	con.fill("#user-id", "grace")
	con.click("#user-btn")
	row := fmt.Sprintf(`#sessions tr[data-handle=%q]`, graceHandle)
	con.waitFor(generous, "grace's session listed", fmt.Sprintf(`!!document.querySelector(%s)`, jsString(row)), nil)
	con.click(fmt.Sprintf(`button[data-revoke=%q]`, graceHandle))
	waitClosed4500(t, grace, graceIdx)
	con.waitFor(generous, "the session leaves the list", fmt.Sprintf(`!document.querySelector(%s) && document.getElementById('sessions-empty').hidden === false`, jsString(row)), nil)
	con.waitFor(generous, "the revocation in the live tail",
		`!!document.querySelector('#tail tr[data-kind="session.revoked"]')`, nil)

	// Revoke all of heidi's sessions: two browsers, two sessions.
	h1, h1Idx, _ := userTab(t, b, tc, "heidi-1", "heidi")
	h2, h2Idx, _ := userTab(t, b, tc, "heidi-2", "heidi")
	con.fill("#user-id", "heidi")
	con.click("#user-btn")
	con.waitFor(generous, "heidi's two sessions listed", `document.querySelectorAll('#sessions tbody tr').length === 2`, nil)
	con.click("#revoke-all")
	con.waitFor(generous, "revoke-all armed", `document.getElementById('revoke-all').dataset.armed === 'true'`, nil)
	con.click("#revoke-all")
	waitClosed4500(t, h1, h1Idx)
	waitClosed4500(t, h2, h2Idx)
	con.waitFor(generous, "the console reports the revocation", `document.getElementById('flash').textContent.includes('Revoked 2 session(s) of heidi')`, nil)

	// Logout: the console is back at its login form and the cookie is gone.
	con.click("#logout-btn")
	con.waitFor(generous, "login form after logout", `!document.getElementById('login').hidden`, nil)
	for _, c := range op.cookies(tc.URL() + "/admin/") {
		if strings.HasSuffix(c.Name, "sg_admin") {
			t.Errorf("admin cookie still set after logout: %s", c.Name)
		}
	}
}
