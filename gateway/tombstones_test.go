package gateway

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/sessiongate/sessiongate/session"
)

// lateDeleteStore reports a Destroy but leaves the session in place, as a
// store delete that has not landed yet would.
type lateDeleteStore struct{ session.Store }

func (lateDeleteStore) Destroy(context.Context, string) (bool, error) { return true, nil }

// A reconnect that races a revocation (the store still has the session) is
// refused: the revoked handle is tombstoned.
func TestRevokedHandleTombstoned(t *testing.T) {
	g := startGateway(t, gwOptions{wrap: func(s session.Store) session.Store { return lateDeleteStore{s} }})
	tok, handle := g.createSession("olga")
	w := g.dialToken(tok)
	w.mustNext("welcome")
	if st, body := g.api("DELETE", "/api/v1/sessions/"+handle, nil); st != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", st, body)
	}
	if code := w.closeCode(generous); code != 4500 {
		t.Fatalf("close %d, want 4500", code)
	}
	// The premise: the store still has the session, so only the
	// tombstone can refuse the reconnect.
	if _, ok, err := g.store.Get(context.Background(), handle); err != nil || !ok {
		t.Fatalf("session in the store: %v, %v; want it still there (the delete has not landed)", ok, err)
	}
	_, resp, err := dialWS(t, g.wsURL(), http.Header{"Authorization": {"Bearer " + tok}}, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("reconnect after revocation: err=%v resp=%v, want 401", err, resp)
	}
	// GET /auth/session must not call it valid either.
	if st, body := doJSON(t, g.http.URL, http.MethodGet, "/auth/session", nil, tok); st != http.StatusUnauthorized {
		t.Fatalf("GET /auth/session after revocation: %d %s, want 401", st, body)
	}
}

// loadGate pauses one handshake between its store read and its
// registration.
type loadGate struct{ loaded, proceed chan struct{} }

type gatedLoadStore struct {
	session.Store
	gate *atomic.Pointer[loadGate]
}

func (s gatedLoadStore) Load(ctx context.Context, handle string) (session.Session, bool, error) {
	sess, ok, err := s.Store.Load(ctx, handle)
	if g := s.gate.Swap(nil); g != nil {
		close(g.loaded)
		<-g.proceed
	}
	return sess, ok, err
}

// heldDialResult is how a held handshake ended: dialWS's connection or
// error.
type heldDialResult struct {
	w   *wsConn
	err error
}

// heldDial arms gate and dials g with tok in the background. It returns
// once the handshake has read its session and is held there; its outcome
// comes on the channel after lg.proceed is closed.
func heldDial(t *testing.T, g *testGateway, gate *atomic.Pointer[loadGate], tok string) (*loadGate, <-chan heldDialResult) {
	t.Helper()
	lg := &loadGate{loaded: make(chan struct{}), proceed: make(chan struct{})}
	gate.Store(lg)
	done := make(chan heldDialResult, 1)
	go func() {
		w, _, err := dialWS(t, g.wsURL(), http.Header{"Authorization": {"Bearer " + tok}}, nil)
		done <- heldDialResult{w, err}
	}()
	<-lg.loaded
	return lg, done
}

// A revocation that lands while a handshake is between its store read and
// its registration is caught right after the registration, whether it
// revoked the session or its user.
func TestRevocationRacingHandshake(t *testing.T) {
	var gate atomic.Pointer[loadGate]
	g := startGateway(t, gwOptions{wrap: func(s session.Store) session.Store { return gatedLoadStore{Store: s, gate: &gate} }})
	for _, tc := range []struct {
		name   string
		user   string
		revoke func(handle string) (int, []byte)
		status int
	}{
		{name: "session", user: "pia", status: http.StatusNoContent,
			revoke: func(h string) (int, []byte) { return g.api("DELETE", "/api/v1/sessions/"+h, nil) }},
		{name: "user", user: "quinn", status: http.StatusOK,
			revoke: func(string) (int, []byte) { return g.api("DELETE", "/api/v1/users/quinn/sessions", nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, handle := g.createSession(tc.user)
			lg, done := heldDial(t, g, &gate, tok)
			if st, body := tc.revoke(handle); st != tc.status {
				t.Fatalf("revoke: %d %s", st, body)
			}
			close(lg.proceed)
			d := <-done
			if d.err != nil {
				t.Fatalf("dial: %v", d.err)
			}
			if code := d.w.closeCode(generous); code != 4500 {
				t.Fatalf("close %d, want 4500", code)
			}
		})
	}
}

// A revocation whose request is cancelled half-way (the client hung up on
// its logout) still deletes the session: the sockets are closed already and
// the tombstone does not last forever.
func TestRevocationOutlivesItsRequest(t *testing.T) {
	g := startGateway(t, gwOptions{})
	_, handle := g.createSession("sam")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := g.srv.rev.RevokeSession(ctx, handle, "test")
	if res.Pending || !res.Existed {
		t.Fatalf("RevokeSession with a cancelled request: %+v", res)
	}
	if _, ok, _ := g.store.Get(context.Background(), handle); ok {
		t.Fatal("session still in the store")
	}
}

// failingUserDeleteStore refuses DestroyUser while failing is set, and
// answers everything else: a user revocation whose store delete failed
// while handshakes can still read the user's sessions.
type failingUserDeleteStore struct {
	session.Store
	failing *atomic.Bool
}

func (s failingUserDeleteStore) DestroyUser(ctx context.Context, userID string) ([]string, error) {
	if s.failing.Load() {
		return nil, errors.New("test: destroy user refused")
	}
	return s.Store.DestroyUser(ctx, userID)
}

// A user revocation that the store has not confirmed (202 pending) refuses
// every handshake of that user, although its sessions still read as valid,
// until the retry has destroyed them.
func TestPendingUserRevocationRefusesHandshakes(t *testing.T) {
	var failing atomic.Bool
	g := startGateway(t, gwOptions{wrap: func(s session.Store) session.Store {
		return failingUserDeleteStore{Store: s, failing: &failing}
	}})
	tok, handle := g.createSession("pia")
	w := g.dialToken(tok)
	w.mustNext("welcome")
	failing.Store(true)
	if st, body := g.api("DELETE", "/api/v1/users/pia/sessions", nil); st != http.StatusAccepted {
		t.Fatalf("revoke user: %d %s, want 202 pending", st, body)
	}
	if code := w.closeCode(generous); code != 4500 {
		t.Fatalf("close %d, want 4500", code)
	}
	if _, ok, err := g.store.Get(context.Background(), handle); err != nil || !ok {
		t.Fatalf("premise: the session must still read as valid; got %v, %v", ok, err)
	}
	_, resp, err := dialWS(t, g.wsURL(), http.Header{"Authorization": {"Bearer " + tok}}, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("handshake during the pending user revocation: err=%v resp=%v, want 401", err, resp)
	}
	if st, body := doJSON(t, g.http.URL, http.MethodGet, "/auth/session", nil, tok); st != http.StatusUnauthorized {
		t.Fatalf("GET /auth/session during the pending user revocation: %d %s, want 401", st, body)
	}
	failing.Store(false)
	waitFor(t, generous, "the revocation confirmed", func() bool {
		_, ok, err := g.store.Get(context.Background(), handle)
		return err == nil && !ok
	})
}
