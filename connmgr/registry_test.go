package connmgr

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
)

// TestOrderedIsRegistrationOrder: the fan-out's snapshot holds every
// connection once, in the order they registered, whatever shards and map
// order they landed in, and a released buffer keeps no connection alive.
func TestOrderedIsRegistrationOrder(t *testing.T) {
	r := newRegistry(16, limits{})
	var draining atomic.Bool
	const n = 500
	for _, i := range rand.Perm(n) {
		c := &conn{info: Info{ID: fmt.Sprint("c", i), UserID: fmt.Sprint("u", i%7), Handle: fmt.Sprint("s", i)}, opened: int64(1000 + i)}
		if err := r.add(c, &draining); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 { // the maps' order differs on every walk
		p := r.ordered()
		all := *p
		if len(all) != n {
			t.Fatalf("ordered holds %d connections, want %d", len(all), n)
		}
		for i, c := range all {
			if c.opened != int64(1000+i) {
				t.Fatalf("position %d holds the connection registered %dth", i, c.opened-1000)
			}
		}
		r.release(p)
		if len(*p) != 0 || cap(*p) < n || slices.ContainsFunc((*p)[:n], func(c *conn) bool { return c != nil }) {
			t.Fatal("a released buffer still holds connections")
		}
	}
}
