// Package backoff is the one retry-delay policy of sessiongate: exponential
// growth from a floor to a cap, with optional jitter so that many instances
// losing the same Redis do not retry in lockstep.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff. The zero value is not useful: set Min
// and Max. A Policy is a value and safe for concurrent use.
type Policy struct {
	// Min is the delay after the first failure.
	Min time.Duration
	// Max caps every delay.
	Max time.Duration
	// Jitter is the relative spread applied to each delay, e.g. 0.2 for
	// ±20%. Zero means none. The result always stays within [Min, Max].
	Jitter float64
}

// Delay returns the wait after the attempt-th consecutive failure
// (1-based; attempts below 1 count as 1): Min·2^(attempt-1), capped at Max,
// with jitter.
func (p Policy) Delay(attempt int) time.Duration {
	lo, hi := p.Min, p.Max
	if hi < lo {
		hi = lo
	}
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	if d > hi || d <= 0 {
		d = hi
	}
	if p.Jitter > 0 {
		if j := int64(float64(d) * p.Jitter); j > 0 {
			d += time.Duration(rand.Int64N(2*j+1) - j)
		}
	}
	return min(max(d, lo), hi)
}
