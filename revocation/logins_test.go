package revocation

import (
	"slices"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/session"
)

func TestLogins(t *testing.T) {
	clock := newFakeClock()
	l := newLogins(time.Minute, 3)
	handles := func(refs []session.IndexRef) []string {
		var out []string
		for _, r := range refs {
			out = append(out, r.Handle)
		}
		return out
	}
	l.add(session.IndexRef{UserID: "u", Handle: "a"}, clock.Now())
	clock.Add(time.Second)
	l.add(session.IndexRef{UserID: "u", Handle: "b"}, clock.Now())
	if got := handles(l.due(clock.Now(), time.Second)); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("due = %v, want [a]: b is younger than the grace", got)
	}
	l.add(session.IndexRef{UserID: "u", Handle: "c"}, clock.Now())
	l.add(session.IndexRef{UserID: "u", Handle: "d"}, clock.Now()) // past max: a goes
	if got := handles(l.due(clock.Now(), 0)); !slices.Equal(got, []string{"b", "c", "d"}) {
		t.Fatalf("due = %v, want [b c d]", got)
	}
	l.forget([]string{"c", "x"})
	if got := handles(l.due(clock.Now(), 0)); !slices.Equal(got, []string{"b", "d"}) {
		t.Fatalf("after forget: due = %v, want [b d]", got)
	}
	clock.Add(time.Minute) // b and d are a minute old: their checks are over
	if got := l.due(clock.Now(), 0); len(got) != 0 || l.len() != 0 {
		t.Fatalf("past ttl: due = %v, %d left", handles(got), l.len())
	}
}
