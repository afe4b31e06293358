package gateway

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

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
	if code := w.closeCode(5 * time.Second); code != 4500 {
		t.Fatalf("close %d, want 4500", code)
	}
	if _, _, err := g.store.Get(context.Background(), handle); err != nil {
		t.Fatal(err)
	}
	_, resp, err := dialWS(t, g.wsURL(), http.Header{"Authorization": {"Bearer " + tok}}, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("reconnect after revocation: err=%v resp=%v, want 401", err, resp)
	}
}

func TestTombstonesExpireAndStayBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	ts := newTombstones(time.Minute)
	ts.add("a", now)
	if !ts.has("a", now.Add(59*time.Second)) || ts.has("a", now.Add(time.Minute)) {
		t.Fatal("tombstone should live exactly its ttl")
	}
	// Distinct keys (string(rune(i)) would fold the surrogate range into
	// one, staying under the bound and proving nothing).
	for i := 0; i < maxTombstones+10; i++ {
		ts.add(strconv.Itoa(i), now)
	}
	if !ts.has(strconv.Itoa(maxTombstones+9), now) {
		t.Fatal("the newest tombstone was lost when the set overflowed")
	}
	if n := len(ts.m); n > maxTombstones {
		t.Fatalf("%d tombstones, bound is %d", n, maxTombstones)
	}
}

// A revocation that lands while a handshake is between its store read and
// its registration is caught right after the registration.
func TestCloseIfRevokedMeanwhile(t *testing.T) {
	g := startGateway(t, gwOptions{})
	t.Run("session tombstoned", func(t *testing.T) {
		tok, handle := g.createSession("pia")
		w := g.dialToken(tok)
		w.mustNext("welcome")
		g.srv.tomb.add(handle, g.srv.now())
		g.srv.closeIfRevokedMeanwhile(handle, "pia", time.Time{}, g.srv.now())
		if code := w.closeCode(5 * time.Second); code != 4500 {
			t.Fatalf("close %d, want 4500", code)
		}
	})
	t.Run("user revoked, this session gone", func(t *testing.T) {
		tok, handle := g.createSession("quinn")
		w := g.dialToken(tok)
		w.mustNext("welcome")
		since := g.srv.now()
		g.srv.tomb.addUser("quinn", g.srv.now())
		if _, err := g.store.Destroy(context.Background(), handle); err != nil {
			t.Fatal(err)
		}
		g.srv.closeIfRevokedMeanwhile(handle, "quinn", time.Now().Add(time.Hour), since)
		if code := w.closeCode(5 * time.Second); code != 4500 {
			t.Fatalf("close %d, want 4500", code)
		}
	})
	t.Run("user revoked, this session is a new login", func(t *testing.T) {
		tok, handle := g.createSession("rita")
		w := g.dialToken(tok)
		w.mustNext("welcome")
		since := g.srv.now()
		g.srv.tomb.addUser("rita", g.srv.now())
		g.srv.closeIfRevokedMeanwhile(handle, "rita", time.Now().Add(time.Hour), since)
		// Still open: an event sent now arrives.
		time.Sleep(200 * time.Millisecond)
		if n := g.srv.conns.SendSession(handle, []byte(`{"type":"event","id":"x","event":"still","data":{}}`)); n != 1 {
			t.Fatalf("session closed although it still exists (sent to %d)", n)
		}
		if f := w.mustNext("event"); f.Event != "still" {
			t.Fatalf("got %+v", f)
		}
	})
}

// A revocation whose request is cancelled half-way (the client hung up on
// its logout) still deletes the session: the sockets are closed already and
// the tombstone does not last forever.
func TestRevocationOutlivesItsRequest(t *testing.T) {
	g := startGateway(t, gwOptions{})
	_, handle := g.createSession("sam")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	existed, err := g.srv.revokeSession(ctx, handle, "test")
	if err != nil || !existed {
		t.Fatalf("revokeSession with a cancelled request: existed=%v err=%v", existed, err)
	}
	if _, ok, _ := g.store.Get(context.Background(), handle); ok {
		t.Fatal("session still in the store")
	}
}
