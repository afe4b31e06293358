package revocation

import (
	"context"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/connmgr"
	"github.com/sessiongate/sessiongate/pubsub"
)

func TestHandleEvent(t *testing.T) {
	rg := newRig(t, rigOptions{})
	for _, h := range []string{"s1", "u1", "u2", "u-new", "own"} {
		rg.conns.open("joy", h, 1, time.Time{})
	}
	rg.conns.open("kim", "k1", 1, time.Time{})
	rg.conns.open("kim", "k2", 1, time.Time{})

	rg.r.HandleEvent(pubsub.Event{Kind: pubsub.KindSessionRevoked, Origin: "peer", Handle: "s1"})
	if rg.conns.code("s1") != connmgr.CodeRevoked || !rg.r.Revoked("s1") {
		t.Fatal("session.revoked: not closed with 4500 and tombstoned")
	}
	rg.r.HandleEvent(pubsub.Event{Kind: pubsub.KindUserRevoked, Origin: "peer", UserID: "joy", Handles: []string{"u1", "u2", "gone"}})
	if rg.conns.code("u1") != connmgr.CodeRevoked || rg.conns.code("u2") != connmgr.CodeRevoked || !rg.r.Revoked("gone") {
		t.Fatal("user.revoked: listed handles not closed and tombstoned")
	}
	if !rg.conns.isOpen("u-new") || rg.r.Revoked("u-new") {
		t.Fatal("user.revoked closed a session it did not list")
	}
	// Own events: this instance already acted on them.
	rg.r.HandleEvent(pubsub.Event{Kind: pubsub.KindSessionRevoked, Origin: "self", Handle: "own"})
	if !rg.conns.isOpen("own") {
		t.Fatal("own event applied twice")
	}
	// An event from an older instance carries no handles: every session of
	// the user closes, as before.
	rg.r.HandleEvent(pubsub.Event{Kind: pubsub.KindUserRevoked, Origin: "old-peer", UserID: "kim"})
	if rg.conns.code("k1") != connmgr.CodeRevoked || rg.conns.code("k2") != connmgr.CodeRevoked {
		t.Fatal("legacy user.revoked did not close the user")
	}
	if l := rg.logs.FilterMessage("user revoked by peer").Len(); l != 2 {
		t.Fatalf("%d 'user revoked by peer' lines, want 2", l)
	}
	// Other kinds are not the revoker's.
	rg.r.HandleEvent(pubsub.Event{Kind: pubsub.KindMessage, Origin: "peer", Target: &pubsub.Target{All: true}})
	if !rg.conns.isOpen("own") {
		t.Fatal("a message event closed something")
	}
}

// The handshake's second check: a connection registered after a revocation
// ran (whose close found nothing) is closed; any other is left alone.
func TestCloseIfRevokedMeanwhile(t *testing.T) {
	rg := newRig(t, rigOptions{})
	rg.fs.put("lu", "h")
	if rg.r.Revoked("h") {
		t.Fatal("tombstoned before any revocation")
	}
	// The handshake read the store (the session existed), then the
	// revocation ran before the connection registered.
	rg.r.RevokeSession(context.Background(), "h", "api")
	rg.conns.open("lu", "h", 1, time.Time{})
	rg.conns.open("lu", "other", 1, time.Time{})
	if !rg.r.CloseIfRevokedMeanwhile("h", "u") || rg.conns.code("h") != connmgr.CodeRevoked {
		t.Fatal("the late registration was not closed with 4500")
	}
	if rg.r.CloseIfRevokedMeanwhile("other", "u") || !rg.conns.isOpen("other") {
		t.Fatal("a session nobody revoked was closed")
	}
	// The same through a peer's user revocation.
	rg.r.HandleEvent(pubsub.Event{Kind: pubsub.KindUserRevoked, Origin: "peer", UserID: "lu", Handles: []string{"late"}})
	rg.conns.open("lu", "late", 1, time.Time{})
	if !rg.r.CloseIfRevokedMeanwhile("late", "u") || rg.conns.code("late") != connmgr.CodeRevoked {
		t.Fatal("a registration after a peer's user revocation was not closed")
	}
}
