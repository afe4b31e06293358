package revocation

import (
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/pubsub"
)

// A peer's revocation event that closes connections here records how long
// after its publication that happened; one that closes nothing records
// nothing, and a publisher clock ahead of ours counts as 0, not negative.
func TestRevocationCloseLatency(t *testing.T) {
	rg := newRig(t, rigOptions{})
	rg.conns.open("ann", "a1", 1, time.Time{})
	rg.conns.open("bob", "b1", 1, time.Time{})

	rg.r.HandleEvent(pubsub.Event{Kind: pubsub.KindSessionRevoked, Origin: "peer", Handle: "a1",
		Time: rg.clock.Now().Add(-1500 * time.Millisecond)})
	rg.r.HandleEvent(pubsub.Event{Kind: pubsub.KindSessionRevoked, Origin: "peer", Handle: "nobody-here",
		Time: rg.clock.Now().Add(-time.Hour)})
	rg.r.HandleEvent(pubsub.Event{Kind: pubsub.KindUserRevoked, Origin: "peer", UserID: "bob", Handles: []string{"b1"},
		Time: rg.clock.Now().Add(time.Minute)})

	count, sum := rg.histogram(t, "sessiongate_revocation_close_seconds")
	if count != 2 || sum != 1.5 {
		t.Fatalf("sessiongate_revocation_close_seconds: count %d sum %v, want 2 and 1.5", count, sum)
	}
}

// histogram returns a histogram's sample count and sum.
func (rg *rig) histogram(t *testing.T, name string) (uint64, float64) {
	t.Helper()
	mfs, err := rg.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	t.Fatalf("no histogram %s", name)
	return 0, 0
}
