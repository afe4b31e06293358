package gateway

import (
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"

	"github.com/sessiongate/sessiongate/connmgr"
	"github.com/sessiongate/sessiongate/internal/redistest"
	"github.com/sessiongate/sessiongate/session"
)

// A handshake on B reads its session, then (before it registers) B's
// subscription is cut, the session is revoked on A (B never gets the
// event), the subscription comes back and B's reconcile pass looks at its
// connections, without this one. The connection registers after that
// pass: B must still close it with 4500, and refuse the session from then
// on. Without a check of handshakes that straddle a bus change it would
// stay open until the next sweep (an hour here).
func TestHandshakeAcrossLostRevocationIsClosed(t *testing.T) {
	srv := redistest.Start(t)
	var gate atomic.Pointer[loadGate]
	gws := startInstancesWith(t, srv, 2, map[string]string{"RECONCILE_INTERVAL": "1h"}, func(i int, o *gwOptions) {
		if i == 1 {
			o.wrap = func(st session.Store) session.Store { return gatedLoadStore{Store: st, gate: &gate} }
		}
	})
	a, b := gws[0], gws[1]
	tok, handle := a.createSession("hank")

	lg, got := heldDial(t, b, &gate, tok) // B read the session; it has not registered yet

	restore := cutPubSub(t, srv, a, b)
	if st, body := a.api(http.MethodDelete, "/api/v1/sessions/"+handle, nil); st != http.StatusNoContent {
		t.Fatalf("revoke on A: %d %s", st, body)
	}
	restore()
	waitFor(t, generous, "B subscribed again", b.srv.subscribed.Load)
	// A pass that started after the subscription came back is done: the
	// second pass completed after this point began after it.
	reconciles := func() float64 { return metricValue(t, b, "sessiongate_reconciles_total", "") }
	for range 2 {
		n := reconciles()
		b.srv.requestReconcile("test")
		waitFor(t, generous, "a reconcile pass on B", func() bool { return reconciles() > n })
	}
	if b.srv.rev.Revoked(handle) {
		t.Fatal("B tombstoned the session before the handshake registered: the test lost its race")
	}

	close(lg.proceed)
	d := <-got
	if d.err != nil {
		t.Fatalf("the held handshake failed (%v); it read the session before the revocation", d.err)
	}
	d.w.mustNext("welcome")
	if code := d.w.closeCode(generous); code != websocket.StatusCode(connmgr.CodeRevoked) {
		t.Fatalf("the connection that registered after the pass: close code %d, want %d", code, connmgr.CodeRevoked)
	}
	if w, st := dialStatus(t, b, tok); w != nil || st != http.StatusUnauthorized {
		t.Fatalf("B answered %d for the revoked session, want 401", st)
	}
}
