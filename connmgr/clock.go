package connmgr

import (
	"context"
	"time"
)

// clock is the manager's source of time: the heartbeat and expiry sweep,
// write deadlines, the drain's spreading and the inbound rate limit all read
// it. Production uses the system clock; tests inject a fake one so that
// properties about time are proven by moving time, not by waiting for it.
type clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed, unless the
	// returned timer is stopped first.
	AfterFunc(d time.Duration, f func()) stopper
	// WithTimeout is context.WithTimeout on this clock.
	WithTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc)
}

// stopper is the part of *time.Timer a clock's AfterFunc returns.
type stopper interface {
	Stop() bool
}

// systemClock is the real clock.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) stopper { return time.AfterFunc(d, f) }

func (systemClock) WithTimeout(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, d)
}
