//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/e2e/internal/cluster"
)

// The resume tests' application: e2e/browser/resume_app.html, served by
// haproxy on the load balancer's origin (cluster.Options.Pages), like an
// application's own page behind the same load balancer, importing the
// gateway's /client.js and recording in window.app everything client-js
// hands it.

// resumeAppPath is where haproxy serves the app page.
const resumeAppPath = "/e2e/resume-app.html"

// withResumeApp adds the app page to cluster options.
func withResumeApp(o cluster.Options) cluster.Options {
	o.Pages = map[string]string{resumeAppPath: filepath.Join(suite.repoRoot, "e2e", "browser", "resume_app.html")}
	return o
}

// appPage is one tab running the resume app.
type appPage struct {
	*page
	t *testing.T
}

// openResumeApp opens the app (see withResumeApp) in a new context of b, logs userID in and
// starts client-js with a short reconnect backoff (so a test waits for the
// fault it caused, not for the backoff), then waits for the first welcome.
func openResumeApp(t *testing.T, tc *testCluster, b *browser, userID string) *appPage {
	t.Helper()
	ctx := b.newContext(userID)
	p := ctx.newPage(userID)
	if code := p.goto_(tc.URL() + resumeAppPath); code != http.StatusOK {
		t.Fatalf("app page: HTTP %d", code)
	}
	p.waitFor(generous, "app module loaded (it imports /client.js)", `typeof window.startApp === 'function'`, nil)
	if code := p.login(userID, "pw"); code != http.StatusOK {
		t.Fatalf("login %s: HTTP %d", userID, code)
	}
	ctx.sessionCookie(tc, tc.URL(), "sg_session")
	p.eval(`window.startApp({reconnect: {minDelay: 100, maxDelay: 1000}})`, nil)
	a := &appPage{page: p, t: t}
	a.settled(1, "first welcome")
	return a
}

// appSocket is what the page's recording WebSocket wrapper saw of one
// socket, with the resume fields of its welcome and frames.
type appSocket struct {
	URL     string `json:"url"`
	Welcome *struct {
		Instance  string               `json:"instance"`
		Positions map[string]streamPos `json:"positions"`
		Recovered *bool                `json:"recovered"`
		Lost      []string             `json:"lost"`
	} `json:"welcome"`
	Events []struct {
		Event  string `json:"event"`
		Stream string `json:"stream"`
		Epoch  string `json:"epoch"`
		Offset uint64 `json:"offset"`
		Data   struct {
			N int `json:"n"`
		} `json:"data"`
	} `json:"events"`
	Closed *struct {
		Code int `json:"code"`
	} `json:"closed"`
}

type streamPos struct {
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
}

// seqEvent is one 'seq' event as client-js delivered it to the app.
type seqEvent struct {
	N      int    `json:"n"`
	Stream string `json:"stream"`
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
	Sock   int    `json:"sock"`
}

// appMark is a welcome, recovered or recoveryFailed the app saw; At is the
// number of seq events delivered before it.
type appMark struct {
	Sock      int                  `json:"sock"`
	At        int                  `json:"at"`
	Instance  string               `json:"instance"`
	Streams   []string             `json:"streams"`
	Lost      []string             `json:"lost"`
	Positions map[string]streamPos `json:"positions"`
}

// appState is window.app.
type appState struct {
	Seq            []seqEvent        `json:"seq"`
	Other          []json.RawMessage `json:"other"`
	Welcomes       []appMark         `json:"welcomes"`
	Recovered      []appMark         `json:"recovered"`
	RecoveryFailed []appMark         `json:"recoveryFailed"`
	States         []json.RawMessage `json:"states"`
	Errors         []string          `json:"errors"`
	Terminal       json.RawMessage   `json:"terminal"`
}

func (a *appPage) state() appState {
	a.t.Helper()
	var s appState
	a.eval(`window.app`, &s)
	return s
}

func (a *appPage) socket(i int) appSocket {
	a.t.Helper()
	var s appSocket
	a.eval(fmt.Sprintf(`window.__ws[%d]`, i), &s)
	return s
}

// settledExpr is true once the app has at least `want` welcomes, its
// latest socket is open, and every welcome after the first was followed by
// 'recovered' (or one 'recoveryFailed' more than allowedFailed was seen:
// then it returns that, for the caller to report).
const settledExpr = `(() => {
	const a = window.app, w = a.welcomes.length;
	if (a.terminal) return {terminal: a.terminal};
	if (a.recoveryFailed.length > %[2]d) return {recoveryFailed: a.recoveryFailed};
	if (w < %[1]d || a.recovered.length + a.recoveryFailed.length < w - 1) return null;
	const s = window.__ws[a.welcomes[w - 1].sock];
	if (!s || s.closed || window.client.state !== 'open') return null;
	return {welcomes: w, sock: a.welcomes[w - 1].sock, instance: a.welcomes[w - 1].instance};
})()`

type settledState struct {
	Welcomes       int             `json:"welcomes"`
	Sock           int             `json:"sock"`
	Instance       string          `json:"instance"`
	Terminal       json.RawMessage `json:"terminal"`
	RecoveryFailed json.RawMessage `json:"recoveryFailed"`
}

// settled waits until the app is connected after at least `want` welcomes,
// each reconnect having been recovered; a recoveryFailed or a terminal
// close fails the test at once.
func (a *appPage) settled(want int, what string) settledState {
	a.t.Helper()
	return a.settledAllowing(want, 0, what)
}

// settledAllowing is settled where allowedFailed recoveryFailed events
// are expected (they count as the answer to a reconnect too).
func (a *appPage) settledAllowing(want, allowedFailed int, what string) settledState {
	a.t.Helper()
	var s settledState
	a.waitFor(generous, what, fmt.Sprintf(settledExpr, want, allowedFailed), &s)
	if s.Terminal != nil {
		a.t.Fatalf("%s: the client stopped: %s", what, s.Terminal)
	}
	if s.RecoveryFailed != nil {
		a.t.Fatalf("%s: the app got recoveryFailed: %s", what, s.RecoveryFailed)
	}
	return s
}

// waitSocketClosed waits until the page's socket i has closed.
func (a *appPage) waitSocketClosed(i int, what string) {
	a.t.Helper()
	a.waitFor(generous, what, fmt.Sprintf(`window.__ws[%d].closed`, i), nil)
}

// waitSeqCount waits until the app has been handed at least n seq events.
func (a *appPage) waitSeqCount(n int, what string) {
	a.t.Helper()
	a.waitFor(generous, what, fmt.Sprintf(`window.app.seq.length >= %d`, n), nil)
}

// waitLastSeq waits until the last seq event delivered is number n.
func (a *appPage) waitLastSeq(n int, what string) {
	a.t.Helper()
	a.waitFor(2*generous, what, fmt.Sprintf(`(() => { const s = window.app.seq; return s.length > 0 && s[s.length - 1].n === %d; })()`, n), nil)
}

// seqPosition is where the history put one published event.
type seqPosition struct {
	Via    string `json:"-"`
	Stream string `json:"stream"`
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
}

// seqPublisher publishes the events 0, 1, 2, ... (event "seq", data
// {"n": i}) to one user at a steady rate, each through the server API of
// one instance directly (not the load balancer), rotating over the
// instances the test has not fenced. A publish whose outcome is unknown
// would have to be retried, and a retry may publish a number twice, so the
// publisher never retries: any failure stops it, and the test fails with
// it. The test fences an instance before killing or stopping it, which
// waits for a publish in flight to it.
type seqPublisher struct {
	tc       *testCluster
	user     string
	interval time.Duration
	client   *http.Client

	// mu is held for each publish, target choice to answer: fence takes it,
	// so once fence returns no publish to that instance is in flight.
	mu      sync.Mutex
	fenced  map[string]bool
	rr      int
	posted  []seqPosition // by number
	limit   int           // publish numbers below limit only
	stopped bool
	err     error
	changed chan struct{} // closed and replaced on every change of state
	done    chan struct{}
}

// startSeqPublisher starts publishing to userID every interval, numbers
// below limit (raise it with allow). It stops at test cleanup.
func startSeqPublisher(t *testing.T, tc *testCluster, userID string, interval time.Duration, limit int) *seqPublisher {
	t.Helper()
	p := &seqPublisher{
		tc: tc, user: userID, interval: interval,
		// A fresh connection per publish: a kept-alive connection to an
		// instance that restarted meanwhile could fail a POST in a way that
		// leaves its outcome unknown.
		client:  &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}},
		fenced:  map[string]bool{},
		limit:   limit,
		changed: make(chan struct{}),
		done:    make(chan struct{}),
	}
	ctx, cancel := context.WithCancel(context.Background())
	go p.run(ctx)
	t.Cleanup(func() {
		p.stop() // first: a publish in flight finishes (cancelling it would fail it)
		cancel()
		<-p.done
		if err := p.failure(); err != nil {
			t.Errorf("publisher: %v", err)
		}
	})
	return p
}

func (p *seqPublisher) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *seqPublisher) run(ctx context.Context) {
	defer close(p.done)
	tick := time.NewTicker(p.interval)
	defer tick.Stop()
	for {
		p.mu.Lock()
		if p.stopped || p.err != nil {
			p.mu.Unlock()
			return
		}
		if len(p.posted) >= p.limit {
			ch := p.changed
			p.mu.Unlock()
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
			continue
		}
		n := len(p.posted)
		pos, err := p.publishLocked(ctx, n)
		if err != nil {
			p.err = err
		} else {
			p.posted = append(p.posted, pos)
		}
		p.notifyLocked()
		p.mu.Unlock()
		select {
		case <-tick.C:
		case <-ctx.Done():
			return
		}
	}
}

// publishLocked publishes number n through the next instance that runs
// and is not fenced.
func (p *seqPublisher) publishLocked(ctx context.Context, n int) (seqPosition, error) {
	var via *cluster.Gateway
	for range p.tc.Gateways {
		g := p.tc.Gateways[p.rr%len(p.tc.Gateways)]
		p.rr++
		if !p.fenced[g.ID] && g.Running() {
			via = g
			break
		}
	}
	if via == nil {
		return seqPosition{}, fmt.Errorf("number %d: no running instance that is not fenced", n)
	}
	body, _ := json.Marshal(map[string]any{"target": map[string]any{"user_id": p.user}, "event": "seq", "data": map[string]int{"n": n}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, via.URL()+"/api/v1/publish", bytes.NewReader(body))
	if err != nil {
		return seqPosition{}, err
	}
	req.Header.Set("Authorization", "Bearer "+p.tc.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return seqPosition{}, fmt.Errorf("publish of number %d via %s failed, outcome unknown (not retried: a retry could publish it twice): %w", n, via.ID, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return seqPosition{}, fmt.Errorf("publish of number %d via %s: HTTP %d %s (not retried)", n, via.ID, resp.StatusCode, raw)
	}
	pos := seqPosition{Via: via.ID}
	if err := json.Unmarshal(raw, &pos); err != nil || pos.Epoch == "" || pos.Offset == 0 {
		return seqPosition{}, fmt.Errorf("publish of number %d via %s: answer %s has no position (err %v)", n, via.ID, raw, err)
	}
	return pos, nil
}

// fence stops publishing through instance id; it returns once no publish
// to it is in flight.
func (p *seqPublisher) fence(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fenced[id] = true
}

// unfence lets the publisher use instance id again.
func (p *seqPublisher) unfence(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.fenced, id)
}

// allow lets the publisher go on up to (not including) number limit.
func (p *seqPublisher) allow(limit int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if limit > p.limit {
		p.limit = limit
		p.notifyLocked()
	}
}

// stop makes the publisher stop: once it returns, no publish is in flight
// and none will start. It returns how many numbers were published.
func (p *seqPublisher) stop() int {
	p.mu.Lock()
	p.stopped = true
	p.notifyLocked()
	n := len(p.posted)
	p.mu.Unlock()
	return n
}

// count is how many numbers were published so far.
func (p *seqPublisher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.posted)
}

func (p *seqPublisher) failure() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// positions returns a copy of where every published number went.
func (p *seqPublisher) positions() []seqPosition {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]seqPosition(nil), p.posted...)
}

// waitCount waits until at least n numbers are published; a publisher
// failure fails the test at once.
func (p *seqPublisher) waitCount(t *testing.T, n int, what string) {
	t.Helper()
	deadline := time.NewTimer(2 * generous)
	defer deadline.Stop()
	for {
		p.mu.Lock()
		got, err, ch := len(p.posted), p.err, p.changed
		p.mu.Unlock()
		if err != nil {
			t.Fatalf("%s: publisher failed: %v", what, err)
		}
		if got >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("%s: %d of %d numbers published within %s", what, got, n, 2*generous)
		}
	}
}

// check fails the test if the publisher failed.
func (p *seqPublisher) check(t *testing.T) {
	t.Helper()
	if err := p.failure(); err != nil {
		t.Fatalf("publisher failed: %v", err)
	}
}
