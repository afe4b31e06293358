//go:build e2e

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// browser is one headless Chromium driven by e2e/browser/driver.mjs over
// line-delimited JSON on its stdin and stdout.
type browser struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu      sync.Mutex
	nextID  int
	pending map[int]chan reply
	dead    chan struct{}
}

type reply struct {
	ID     int             `json:"id"`
	OK     bool            `json:"ok"`
	Result json.RawMessage `json:"result"`
	Error  string          `json:"error"`
}

// startBrowser launches Chromium (accepting the throwaway certificate when
// ignoreTLS) and closes it at cleanup. Its stderr goes to the test's log dir.
func startBrowser(t *testing.T, tc *testCluster, ignoreTLS bool) *browser {
	t.Helper()
	cmd := exec.Command("node", filepath.Join(suite.repoRoot, "e2e", "browser", "driver.mjs"))
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromiumPath())
	if ignoreTLS {
		cmd.Env = append(cmd.Env, "SG_IGNORE_TLS=1")
	}
	logf, err := os.Create(filepath.Join(tc.Dir, "browser.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start browser driver: %v", err)
	}
	b := &browser{t: t, cmd: cmd, stdin: stdin, pending: map[int]chan reply{}, dead: make(chan struct{})}
	ready := make(chan struct{})
	go func() {
		defer close(b.dead)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var r reply
			if json.Unmarshal(sc.Bytes(), &r) != nil {
				continue
			}
			if r.ID == 0 {
				close(ready)
				continue
			}
			b.mu.Lock()
			ch := b.pending[r.ID]
			delete(b.pending, r.ID)
			b.mu.Unlock()
			if ch != nil {
				ch <- r
			}
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-b.dead:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
		_ = cmd.Wait()
		logf.Close()
	})
	select {
	case <-ready:
	case <-b.dead:
		t.Fatalf("browser driver exited at start (see %s)", logf.Name())
	case <-time.After(30 * time.Second):
		t.Fatal("browser driver not ready within 30s")
	}
	return b
}

// call runs one driver command and returns its result.
func (b *browser) call(timeout time.Duration, op string, args map[string]any) (json.RawMessage, error) {
	b.mu.Lock()
	b.nextID++
	id := b.nextID
	ch := make(chan reply, 1)
	b.pending[id] = ch
	b.mu.Unlock()
	msg := map[string]any{"id": id, "op": op}
	for k, v := range args {
		msg[k] = v
	}
	line, _ := json.Marshal(msg)
	if _, err := b.stdin.Write(append(line, '\n')); err != nil {
		return nil, fmt.Errorf("browser %s: %w", op, err)
	}
	select {
	case r := <-ch:
		if !r.OK {
			return nil, fmt.Errorf("browser %s: %s", op, r.Error)
		}
		return r.Result, nil
	case <-b.dead:
		return nil, fmt.Errorf("browser %s: driver exited", op)
	case <-time.After(timeout + 5*time.Second):
		return nil, fmt.Errorf("browser %s: no answer within %s", op, timeout+5*time.Second)
	}
}

func (b *browser) must(timeout time.Duration, op string, args map[string]any) json.RawMessage {
	b.t.Helper()
	r, err := b.call(timeout, op, args)
	if err != nil {
		b.t.Fatal(err)
	}
	return r
}

// bctx is a browser context: its own cookie jar.
type bctx struct {
	b    *browser
	name string
}

// page is one tab.
type page struct {
	b    *browser
	ctx  *bctx
	name string
}

func (b *browser) newContext(name string) *bctx {
	b.must(generous, "newContext", map[string]any{"ctx": name})
	return &bctx{b: b, name: name}
}

// newClockContext is newContext with Playwright's fake clock installed: time
// flows as usual until [bctx.runTimers] jumps it forward.
func (b *browser) newClockContext(name string) *bctx {
	b.must(generous, "newContext", map[string]any{"ctx": name, "clock": true})
	return &bctx{b: b, name: name}
}

// runTimers jumps the fake clock of a [browser.newClockContext] forward by d,
// running every timer callback due meanwhile in all its pages. It is how a
// test proves that nothing was scheduled (a reconnect, say) without
// sleeping and hoping the machine was fast enough for it to happen.
func (c *bctx) runTimers(d time.Duration) {
	c.b.t.Helper()
	c.b.must(generous, "runTimers", map[string]any{"ctx": c.name, "ms": d.Milliseconds()})
}

func (c *bctx) newPage(name string) *page {
	c.b.must(generous, "newPage", map[string]any{"ctx": c.name, "page": name})
	return &page{b: c.b, ctx: c, name: name}
}

type cookie struct {
	Name     string  `json:"name"`
	Value    string  `json:"value"`
	Domain   string  `json:"domain"`
	Path     string  `json:"path"`
	Expires  float64 `json:"expires"`
	HTTPOnly bool    `json:"httpOnly"`
	Secure   bool    `json:"secure"`
	SameSite string  `json:"sameSite"`
}

// cookies returns the context's cookies for url.
func (c *bctx) cookies(url string) []cookie {
	var out []cookie
	raw := c.b.must(generous, "cookies", map[string]any{"ctx": c.name, "urls": []string{url}})
	if err := json.Unmarshal(raw, &out); err != nil {
		c.b.t.Fatal(err)
	}
	return out
}

// sessionCookie returns the named cookie for url and records its value as a
// secret of tc.
func (c *bctx) sessionCookie(tc *testCluster, url, name string) cookie {
	c.b.t.Helper()
	for _, ck := range c.cookies(url) {
		if ck.Name == name {
			tc.addSecret(ck.Value, "browser cookie "+name)
			return ck
		}
	}
	c.b.t.Fatalf("no %s cookie for %s in the browser", name, url)
	return cookie{}
}

func (p *page) goto_(url string) int {
	p.b.t.Helper()
	var status int
	_ = json.Unmarshal(p.b.must(generous, "goto", map[string]any{"page": p.name, "url": url}), &status)
	return status
}

func (p *page) reload() {
	p.b.t.Helper()
	p.b.must(generous, "reload", map[string]any{"page": p.name})
}

func (p *page) click(selector string) {
	p.b.t.Helper()
	p.b.must(generous, "click", map[string]any{"page": p.name, "selector": selector})
}

// eval evaluates a JS expression (promises are awaited) and decodes its
// JSON value into out (if not nil).
func (p *page) eval(expr string, out any) {
	p.b.t.Helper()
	raw := p.b.must(generous, "eval", map[string]any{"page": p.name, "expr": expr})
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			p.b.t.Fatalf("eval %q: %v (%s)", expr, err, raw)
		}
	}
}

// tryWaitFor is waitFor returning the error instead of failing the test.
func (p *page) tryWaitFor(timeout time.Duration, expr string) error {
	_, err := p.b.call(timeout, "waitFor", map[string]any{"page": p.name, "expr": expr, "timeoutMs": timeout.Milliseconds()})
	return err
}

// waitFor polls a JS expression in the page until it is truthy and decodes
// that value into out; it fails the test after timeout with what.
func (p *page) waitFor(timeout time.Duration, what, expr string, out any) {
	p.b.t.Helper()
	raw, err := p.b.call(timeout, "waitFor", map[string]any{"page": p.name, "expr": expr, "timeoutMs": timeout.Milliseconds()})
	if err != nil {
		p.b.t.Fatalf("%s: %v\nsockets: %s", what, err, p.socketsJSON())
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			p.b.t.Fatalf("%s: %v (%s)", what, err, raw)
		}
	}
}

func (p *page) socketsJSON() string {
	raw, err := p.b.call(5*time.Second, "eval", map[string]any{"page": p.name, "expr": "JSON.stringify(window.__ws)"})
	if err != nil {
		return err.Error()
	}
	var s string
	_ = json.Unmarshal(raw, &s)
	return s
}

// wsRecord is what the page's recording WebSocket wrapper saw of one socket.
type wsRecord struct {
	URL     string   `json:"url"`
	Opened  bool     `json:"opened"`
	Error   bool     `json:"error"`
	Welcome *welcome `json:"welcome"`
	Events  []struct {
		ID    string          `json:"id"`
		Event string          `json:"event"`
		Data  json.RawMessage `json:"data"`
	} `json:"events"`
	Closed *struct {
		Code   int    `json:"code"`
		Reason string `json:"reason"`
	} `json:"closed"`
}

type welcome struct {
	ConnID   string `json:"conn_id"`
	UserID   string `json:"user_id"`
	Instance string `json:"instance"`
}

func (p *page) sockets() []wsRecord {
	var out []wsRecord
	p.eval("window.__ws", &out)
	return out
}

// openSocket waits for a socket at index >= from that got its welcome and is
// still open, and returns its index and record.
func (p *page) openSocket(timeout time.Duration, from int, what string) (int, wsRecord) {
	p.b.t.Helper()
	var idx int
	p.waitFor(timeout, what, fmt.Sprintf(`(() => {
		const l = window.__ws || [];
		for (let i = l.length - 1; i >= %d; i--) if (l[i].welcome && !l[i].closed) return i + 1;
		return 0; })()`, from), &idx)
	return idx - 1, p.sockets()[idx-1]
}

// login logs in from the page with fetch (same origin) and returns the status.
func (p *page) login(userID, password string) int {
	p.b.t.Helper()
	var status int
	p.eval(fmt.Sprintf(`fetch('/auth/login', {method: 'POST', credentials: 'same-origin',
		headers: {'Content-Type': 'application/json'},
		body: JSON.stringify({user_id: %q, password: %q})}).then(r => r.status)`, userID, password), &status)
	return status
}

// loginAndConnect opens the demo page at base, logs in and reloads it: the
// demo page then starts window.sg.client by itself. It returns the first
// open socket.
func (p *page) loginAndConnect(base, userID string) (int, wsRecord) {
	p.b.t.Helper()
	p.goto_(base + "/")
	if code := p.login(userID, "pw"); code != 200 {
		p.b.t.Fatalf("login %s: HTTP %d", userID, code)
	}
	p.reload()
	return p.openSocket(generous, 0, "first welcome after login")
}

// checkSignedOut asserts that the client library fired "revoked" (the demo
// page logs it) and that the page's #state shows "signed out".
func (p *page) checkSignedOut(t *testing.T, timeout time.Duration) {
	t.Helper()
	if err := p.tryWaitFor(timeout, `document.getElementById('log').textContent.includes('signed out: session revoked')`); err != nil {
		t.Errorf("tab %s: the client did not report the revocation: %v", p.name, err)
	}
	if err := p.tryWaitFor(timeout, `document.getElementById('state').textContent.startsWith('signed out')`); err != nil {
		t.Errorf("tab %s: #state shows %q, want it to start with \"signed out\"", p.name, p.stateText())
	}
}

// stateText is the demo page's #state text.
func (p *page) stateText() string {
	var s string
	p.eval(`document.getElementById('state').textContent`, &s)
	return s
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return strings.ReplaceAll(string(b), "</", `<\/`)
}
