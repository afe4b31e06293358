package main

import (
	"slices"
	"testing"

	"github.com/sessiongate/sessiongate/pubsub"
)

// splitAtBus gives each revocation the first arrival within its window:
// an arrival before the first revocation (an earlier event) is no one's,
// a revocation whose event never arrived in its window is left out, and
// a second arrival in a window is not the next revocation's.
func TestSplitAtBus(t *testing.T) {
	starts := []int64{100, 200, 300, 400}
	ends := []int64{150, 260, 390, 430}
	arrivals := []int64{
		50,       // before the first revocation
		120,      // revocation 0
		130,      // a second one in revocation 0's window
		310, 320, // revocation 2 (revocation 1 had none in its window)
		440, // revocation 3's, after its close was seen
	}
	toBus, busToClose := splitAtBus(starts, ends, arrivals)
	if want := []int64{10, 20, 40}; !slices.Equal(toBus, want) {
		t.Errorf("to bus = %v, want %v (sorted)", toBus, want)
	}
	if want := []int64{-10, 30, 80}; !slices.Equal(busToClose, want) {
		t.Errorf("bus to close = %v, want %v (sorted)", busToClose, want)
	}
	if a, b := splitAtBus(starts, ends, nil); len(a)+len(b) != 0 {
		t.Errorf("no arrivals: %v %v", a, b)
	}
}

// The gateways' own encoding of a session revocation is matched, no
// other kind is.
func TestIsSessionRevoked(t *testing.T) {
	enc := func(e pubsub.Event) string {
		b, err := e.Encode()
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if p := enc(pubsub.Event{Kind: pubsub.KindSessionRevoked, Handle: "h", Origin: "a"}); !isSessionRevoked(p) {
		t.Errorf("a session.revoked event not matched: %s", p)
	}
	if p := enc(pubsub.Event{Kind: pubsub.KindUserRevoked, UserID: "u", Handles: []string{"h"}, Origin: "a"}); isSessionRevoked(p) {
		t.Errorf("a user.revoked event matched: %s", p)
	}
}
