package connmgr

import (
	"context"
	"sync"
)

// group counts running work (Serve calls, flush and close goroutines, Run
// loops) and lets Shutdown wait for it to reach zero. Unlike sync.WaitGroup it
// allows add while a wait is in progress, which happens when a late Serve is
// refused during a drain.
type group struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n drops to zero; nil while n == 0
}

func (g *group) add() {
	g.mu.Lock()
	if g.n == 0 {
		g.idle = make(chan struct{})
	}
	g.n++
	g.mu.Unlock()
}

func (g *group) done() {
	g.mu.Lock()
	g.n--
	if g.n == 0 {
		close(g.idle)
		g.idle = nil
	}
	g.mu.Unlock()
}

// wait returns nil once the count is zero, or ctx's error.
func (g *group) wait(ctx context.Context) error {
	for {
		g.mu.Lock()
		ch := g.idle
		g.mu.Unlock()
		if ch == nil {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
