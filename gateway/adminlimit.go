package gateway

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Admin login attempts per client IP: a burst of 10, then one every 6
// seconds. API keys are long random strings (production: 16 characters at
// least), so the limit is about logs and load more than about guessing.
const (
	adminLoginBurst    = 10
	adminLoginInterval = 6 * time.Second
	// adminLoginIPs bounds the addresses remembered; past it, the ones
	// whose bucket is full again are forgotten (as good as new).
	adminLoginIPs = 10_000
)

// loginLimiter limits admin login attempts per client IP on this instance,
// on the server's clock (so tests move a fake clock instead of waiting).
// Safe for concurrent use.
type loginLimiter struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*rate.Limiter
}

func newLoginLimiter(now func() time.Time) *loginLimiter {
	return &loginLimiter{now: now, m: map[string]*rate.Limiter{}}
}

// allow takes one attempt from ip's bucket.
func (l *loginLimiter) allow(ip string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.m[ip]
	if !ok {
		if len(l.m) >= adminLoginIPs {
			for k, v := range l.m {
				if v.TokensAt(now) >= adminLoginBurst {
					delete(l.m, k)
				}
			}
			if len(l.m) >= adminLoginIPs {
				return false // under a flood of addresses: refuse new ones
			}
		}
		lim = rate.NewLimiter(rate.Every(adminLoginInterval), adminLoginBurst)
		l.m[ip] = lim
	}
	return lim.AllowN(now, 1)
}
