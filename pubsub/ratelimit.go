package pubsub

import (
	"sync"
	"time"
)

// logLimiter lets one log line through per interval and counts the lines it
// held back, so a flood of bad or dropped events cannot flood the logs. Safe
// for concurrent use; the zero value needs every set.
type logLimiter struct {
	every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed uint64
}

// allow reports whether a line may be logged now and, if so, how many lines
// were held back since the previous one.
func (l *logLimiter) allow(now time.Time) (ok bool, suppressed uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < l.every {
		l.suppressed++
		return false, 0
	}
	l.last = now
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}
