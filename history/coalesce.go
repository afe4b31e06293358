package history

import (
	"context"
	"errors"
	"sync"
)

// Reader reads a stream's history; [Redis] and [Memory] implement it.
type Reader interface {
	Since(ctx context.Context, stream string, pos Position, limit int) (Result, error)
}

// Coalescing is a [Reader] that runs identical concurrent reads (same
// stream, position and limit) once: when a killed instance's clients all
// reconnect at once, those of one user, and all of them for the broadcast
// stream, mostly ask for the same position, and Redis sees one read per
// distinct position in flight instead of one per client. Its methods are
// safe for concurrent use; it starts no goroutine.
type Coalescing struct {
	r Reader

	mu      sync.Mutex
	flights map[sinceKey]*flight

	joined func(k sinceKey, waiters int) // test hook, under mu; nil
}

type sinceKey struct {
	stream string
	pos    Position
	limit  int
}

// flight is one read in progress. res and err are written before done is
// closed and read only after.
type flight struct {
	done    chan struct{}
	res     Result
	err     error
	waiters int
}

// NewCoalescing returns a Coalescing in front of r.
func NewCoalescing(r Reader) *Coalescing {
	return &Coalescing{r: r, flights: map[sinceKey]*flight{}}
}

// Since returns r's Since, sharing the read with identical calls already in
// flight: the Result is then shared too, and read-only. A caller whose ctx
// ends stops waiting at once; when the caller running the read stops
// because its own ctx ended, the others do not get its error: one of them
// reads again.
func (c *Coalescing) Since(ctx context.Context, stream string, pos Position, limit int) (Result, error) {
	k := sinceKey{stream: stream, pos: pos, limit: limit}
	for {
		c.mu.Lock()
		f, inFlight := c.flights[k]
		if !inFlight {
			f = &flight{done: make(chan struct{})}
			c.flights[k] = f
		}
		f.waiters++
		if c.joined != nil {
			c.joined(k, f.waiters)
		}
		c.mu.Unlock()

		if !inFlight {
			f.res, f.err = c.r.Since(ctx, stream, pos, limit)
			c.mu.Lock()
			delete(c.flights, k)
			c.mu.Unlock()
			close(f.done)
			return f.res, f.err
		}
		select {
		case <-f.done:
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
		if f.err != nil && ctx.Err() == nil &&
			(errors.Is(f.err, context.Canceled) || errors.Is(f.err, context.DeadlineExceeded)) {
			continue // the reader's context ended, not ours: read again
		}
		return f.res, f.err
	}
}
