// Package fakeclock is a clock tests move by hand, for code that takes a
// `now func() time.Time`.
package fakeclock

import (
	"sync"
	"time"
)

// Clock is a time that moves only when Add is called. Safe for concurrent
// use; pass its Now method where a clock function is expected.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// New returns a Clock reading t.
func New(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
