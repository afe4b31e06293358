package presence

import (
	"strconv"
	"testing"
)

// BenchmarkTakeDirty: one flush's worth of changes when every one of
// 20,000 users connected since the last flush (a connection burst): the
// counting on the handshake path and the flush's walk over the dirty
// users, per user.
func BenchmarkTakeDirty(b *testing.B) {
	const users = 20000
	ids := make([]string, users)
	for i := range ids {
		ids[i] = "u-" + strconv.Itoa(i)
	}
	c := newCounter()
	b.ReportAllocs()
	for b.Loop() {
		for i, u := range ids {
			c.add(u, "s-"+strconv.Itoa(i&1), 1)
		}
		changes := c.takeDirty(false)
		if len(changes) != users {
			b.Fatalf("%d changes, want %d", len(changes), users)
		}
		c.written(changes, false)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*users), "ns/user")
}
