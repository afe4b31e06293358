package redisconn

import (
	"math/rand/v2"
	"time"
)

// backoff returns the delay after the attempt-th failure (1-based):
// min·2^(attempt-1) capped at max, with ±20% jitter so that many instances
// losing the same Redis do not retry in lockstep. The result stays in
// [min, max].
func backoff(attempt int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < attempt && d < hi; i++ {
		d *= 2
	}
	if d > hi || d <= 0 {
		d = hi
	}
	if j := int64(d) / 5; j > 0 {
		d += time.Duration(rand.Int64N(2*j+1) - j)
	}
	return min(max(d, lo), hi)
}
