package main

import (
	"slices"
	"testing"

	"github.com/sessiongate/sessiongate/pubsub"
)

// splitAtBus gives each revocation its own event, by key: an event of no
// revocation's (an earlier one) is no one's, a revocation whose event
// never arrived is left out, a second event of one key does not count,
// an event read after the next revocation started (a lagging watcher) is
// still its own revocation's, and one that arrived before its revocation
// started is not its.
func TestSplitAtBus(t *testing.T) {
	starts := []int64{100, 200, 300, 400, 500}
	ends := []int64{150, 260, 390, 430, 560}
	keys := []string{"r0", "r1", "r2", "r3", "r4"}
	arrivals := map[string]int64{
		"earlier": 50,  // before the first revocation, no one's
		"r0":      120, // revocation 0 (its second event is not recorded)
		// r1: none
		"r2": 310, // revocation 2
		"r3": 440, // revocation 3's, after its close was seen
		"r4": 499, // before revocation 4 started: not its
	}
	toBus, busToClose := splitAtBus(starts, ends, keys, arrivals)
	if want := []int64{10, 20, 40}; !slices.Equal(toBus, want) {
		t.Errorf("to bus = %v, want %v (sorted)", toBus, want)
	}
	if want := []int64{-10, 30, 80}; !slices.Equal(busToClose, want) {
		t.Errorf("bus to close = %v, want %v (sorted)", busToClose, want)
	}
	if a, b := splitAtBus(starts, ends, keys, nil); len(a)+len(b) != 0 {
		t.Errorf("no arrivals: %v %v", a, b)
	}
	// The watcher read revocation 0's event only after revocation 1 had
	// started, and revocation 1's after that: each is still its own.
	late := map[string]int64{"earlier": 210, "r0": 220, "r1": 230}
	toBus, busToClose = splitAtBus(starts[:2], ends[:2], keys[:2], late)
	if want := []int64{30, 120}; !slices.Equal(toBus, want) {
		t.Errorf("lagging watcher: to bus = %v, want %v (sorted)", toBus, want)
	}
	if want := []int64{-70, 30}; !slices.Equal(busToClose, want) {
		t.Errorf("lagging watcher: bus to close = %v, want %v (sorted)", busToClose, want)
	}
}

// A gateway's session.revoked event names its handle, encoded by the
// gateways' own encoder (not a literal); no other kind names one.
func TestSessionRevokedHandle(t *testing.T) {
	enc := func(e pubsub.Event) string {
		b, err := e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if h, ok := sessionRevokedHandle(enc(pubsub.Event{Kind: pubsub.KindSessionRevoked, Handle: "h", Origin: "a"})); !ok || h != "h" {
		t.Errorf("a session.revoked event of h: %q, %v", h, ok)
	}
	if h, ok := sessionRevokedHandle(enc(pubsub.Event{Kind: pubsub.KindUserRevoked, UserID: "u", Handles: []string{"h"}, Origin: "a"})); ok {
		t.Errorf("a user.revoked event matched, as %q", h)
	}
	if _, ok := sessionRevokedHandle("not json"); ok {
		t.Error("a message that is no event matched")
	}
}
