package main

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// heldConn is one open client connection and how it ended.
type heldConn struct {
	ws       *wsConn
	closedAt atomic.Int64 // unix nanoseconds; 0 while open
	code     atomic.Int32
	done     chan struct{}
}

// fleet is a set of open client connections, each with one reader goroutine
// that answers {"type":"ping"}, timestamps events and records how it closed.
type fleet struct {
	d     *dialers
	addr  string
	path  string
	conns []*heldConn

	events atomic.Int64
	pings  atomic.Int64
	rec    atomic.Pointer[recorder]
	wg     sync.WaitGroup
}

func newFleet(d *dialers, addr, path string) *fleet {
	return &fleet{d: d, addr: addr, path: path}
}

// open connects one connection per token (conc handshakes in flight), waits
// for each welcome frame, and starts its reader. It returns the connections
// in token order; on error the ones already opened stay in the fleet.
func (f *fleet) open(ctx context.Context, tokens []string, conc int) ([]*heldConn, error) {
	out := make([]*heldConn, len(tokens))
	var (
		wg      sync.WaitGroup
		failed  atomic.Int64
		errOnce sync.Once
		first   error
	)
	next := make(chan int)
	for range conc {
		wg.Go(func() {
			for i := range next {
				c, err := f.dial(ctx, tokens[i])
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { first = err })
					continue
				}
				out[i] = c
			}
		})
	}
	for i := range tokens {
		next <- i
	}
	close(next)
	wg.Wait()
	kept := out[:0:0]
	for _, c := range out {
		if c != nil {
			kept = append(kept, c)
		}
	}
	f.conns = append(f.conns, kept...)
	if n := failed.Load(); n > 0 {
		return out, fmt.Errorf("%d of %d connections failed, first: %w", n, len(tokens), first)
	}
	return out, nil
}

func (f *fleet) dial(ctx context.Context, token string) (*heldConn, error) {
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ws, err := dialWS(dctx, f.d, f.addr, f.path, token)
	if err != nil {
		return nil, err
	}
	_ = ws.nc.SetReadDeadline(time.Now().Add(15 * time.Second))
	op, p, err := ws.readMessage()
	if err != nil || op != opText || !bytes.HasPrefix(p, []byte(`{"type":"welcome"`)) {
		ws.nc.Close()
		if err == nil {
			err = fmt.Errorf("%w: first frame is not a welcome (op %d)", errBadFrame, op)
		}
		return nil, err
	}
	_ = ws.nc.SetReadDeadline(time.Time{})
	c := &heldConn{ws: ws, done: make(chan struct{})}
	f.wg.Go(func() { f.read(c) })
	return c, nil
}

var (
	pingPrefix  = []byte(`{"type":"ping"`)
	eventPrefix = []byte(`{"type":"event"`)
)

func (f *fleet) read(c *heldConn) {
	defer close(c.done)
	for {
		op, p, err := c.ws.readMessage()
		now := time.Now().UnixNano()
		if err != nil {
			c.code.Store(1006)
			c.closedAt.Store(now)
			c.ws.nc.Close()
			return
		}
		switch op {
		case opClose:
			c.code.Store(int32(closeCode(p)))
			c.closedAt.Store(now)
			c.ws.nc.Close()
			return
		case opText:
			switch {
			case bytes.HasPrefix(p, pingPrefix):
				f.pings.Add(1)
				if c.ws.writePong() != nil {
					continue
				}
			case bytes.HasPrefix(p, eventPrefix):
				// The sample before the count: once waitEvents sees the
				// count, every sample of those events is written.
				if r := f.rec.Load(); r != nil {
					if t := stampOf(p); t > 0 {
						r.add(now - t)
					}
				}
				f.events.Add(1)
			}
		}
	}
}

var stampKey = []byte(`"t":`)

// stampOf extracts the send time (unix ns) the generator put in an event's
// data as "t":<digits>, or 0.
func stampOf(p []byte) int64 {
	i := bytes.Index(p, stampKey)
	if i < 0 {
		return 0
	}
	var v int64
	for _, b := range p[i+len(stampKey):] {
		if b < '0' || b > '9' {
			break
		}
		v = v*10 + int64(b-'0')
	}
	return v
}

// closeAll closes every connection and waits for the readers.
func (f *fleet) closeAll() {
	for _, c := range f.conns {
		_ = c.ws.nc.Close()
	}
	f.wg.Wait()
	f.conns = nil
}

// closeNewest closes the k most recently opened connections, waits for
// their readers and drops them from the fleet: the ones opened first stay,
// so a lower level of the same population is left open.
func (f *fleet) closeNewest(k int) {
	k = min(k, len(f.conns))
	if k <= 0 {
		return
	}
	keep := len(f.conns) - k
	gone := f.conns[keep:]
	for _, c := range gone {
		_ = c.ws.nc.Close()
	}
	for _, c := range gone {
		<-c.done
	}
	clear(gone)
	f.conns = f.conns[:keep]
}

// size is the number of connections in the fleet, open or closed by the
// server.
func (f *fleet) size() int { return len(f.conns) }

// openCount is the number of connections still open.
func (f *fleet) openCount() int {
	n := 0
	for _, c := range f.conns {
		if c.closedAt.Load() == 0 {
			n++
		}
	}
	return n
}

// waitEvents waits until the fleet has received at least want events.
func (f *fleet) waitEvents(ctx context.Context, want int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for f.events.Load() < want {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out: %d of %d events delivered (%d connections open)", f.events.Load(), want, f.openCount())
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		time.Sleep(500 * time.Microsecond)
	}
	return nil
}
