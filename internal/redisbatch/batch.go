// Package redisbatch sends the Redis commands of concurrent callers
// together, one pipeline (one write, one read on one connection) for all
// of them, instead of one round trip each.
//
// Under a handshake storm every new connection reads its session and its
// history positions: 64 handshakes in flight are 64 round trips, each with
// its own write and read syscalls on both sides of the socket, and the
// redis-server's per-request overhead. Batched, they are a few. No caller
// waits for a timer: a caller's commands go out at once when fewer than
// MaxInFlight batches are in flight, else with the next batch, sent as
// soon as one returns (natural batching), so an idle gateway sees no added
// latency and a busy one fewer syscalls.
package redisbatch

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config tunes a [Batcher]. Zero fields take their defaults.
type Config struct {
	// MaxInFlight is how many batches may be in flight at once. Defaults
	// to 2: one being answered while the next one fills.
	MaxInFlight int
	// MaxCommands bounds the commands of one batch. Defaults to 256.
	MaxCommands int
	// Timeout bounds one batch when the first caller's context has no
	// deadline. Defaults to 5s.
	Timeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 2
	}
	if c.MaxCommands <= 0 {
		c.MaxCommands = 256
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	return c
}

// Batcher batches the commands of concurrent [Batcher.Do] calls. It is
// safe for concurrent use and needs no Close: it holds no goroutine while
// nothing is pending.
type Batcher struct {
	rdb redis.UniversalClient
	cfg Config

	mu       sync.Mutex
	pending  []*call
	inFlight int
}

type call struct {
	ctx  context.Context
	cmds []redis.Cmder
	done chan struct{}
}

// New returns a Batcher sending through rdb.
func New(rdb redis.UniversalClient, cfg Config) *Batcher {
	return &Batcher{rdb: rdb, cfg: cfg.withDefaults()}
}

// Do sends cmds (in order, with other callers' commands around them) and
// returns once they are answered, with ctx's error if ctx ends first (the
// commands are then not sent if their batch has not gone out yet, else
// they still run). Each command's own error (cmd.Err) says how it
// went, redis.Nil included; Do's error is only ctx's.
func (b *Batcher) Do(ctx context.Context, cmds ...redis.Cmder) error {
	if len(cmds) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err // like go-redis: nothing is sent for an ended context
	}
	c := &call{ctx: ctx, cmds: cmds, done: make(chan struct{})}
	b.mu.Lock()
	b.pending = append(b.pending, c)
	if b.inFlight < b.cfg.MaxInFlight {
		b.inFlight++
		batch := b.takeLocked()
		b.mu.Unlock()
		// This caller sends the batch its own call is in (no goroutine
		// switch on an idle gateway), then hands what queued meanwhile to
		// a drainer so it can return.
		b.send(batch)
		b.finish()
	} else {
		b.mu.Unlock()
	}
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// takeLocked removes up to MaxCommands commands' worth of calls (at least
// one call) from pending.
func (b *Batcher) takeLocked() []*call {
	n, cmds := 0, 0
	for n < len(b.pending) && (n == 0 || cmds+len(b.pending[n].cmds) <= b.cfg.MaxCommands) {
		cmds += len(b.pending[n].cmds)
		n++
	}
	batch := b.pending[:n:n]
	b.pending = b.pending[n:]
	if len(b.pending) == 0 {
		b.pending = nil // let the backing array go
	}
	return batch
}

// finish ends one in-flight batch: what queued meanwhile goes out from a
// drainer goroutine, else the slot is free.
func (b *Batcher) finish() {
	b.mu.Lock()
	if len(b.pending) == 0 {
		b.inFlight--
		b.mu.Unlock()
		return
	}
	batch := b.takeLocked()
	b.mu.Unlock()
	go func() {
		b.send(batch)
		b.finish()
	}()
}

// send runs one batch as one pipeline and wakes its callers. The batch
// runs without its callers' cancellation (one caller giving up must not
// fail the others' commands), bounded by the latest of their deadlines, or
// by Timeout if one of them has none.
func (b *Batcher) send(batch []*call) {
	live := batch[:0:0]
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil {
			for _, cmd := range c.cmds {
				cmd.SetErr(err) // gave up before its batch went out: not sent
			}
			close(c.done)
			continue
		}
		live = append(live, c)
	}
	if len(live) == 0 {
		return
	}
	batch = live
	var latest time.Time
	for _, c := range batch {
		d, ok := c.ctx.Deadline()
		if !ok {
			latest = time.Now().Add(b.cfg.Timeout)
			break
		}
		if d.After(latest) {
			latest = d
		}
	}
	ctx, cancel := context.WithDeadline(context.WithoutCancel(batch[0].ctx), latest)
	defer cancel()
	if len(batch) == 1 && len(batch[0].cmds) == 1 {
		_ = b.rdb.Process(ctx, batch[0].cmds[0]) // the error is on the command
	} else {
		pipe := b.rdb.Pipeline()
		for _, c := range batch {
			for _, cmd := range c.cmds {
				_ = pipe.Process(ctx, cmd)
			}
		}
		_, _ = pipe.Exec(ctx) // every command carries its own error
	}
	for _, c := range batch {
		close(c.done)
	}
}

// EvalSha returns an EVALSHA command for script s, to send with
// [Batcher.Do]. A reply of NOSCRIPT (the server lost its script cache: a
// restart, a failover, SCRIPT FLUSH) is the caller's to handle, e.g. with
// s.Eval.
func EvalSha(ctx context.Context, s *redis.Script, keys []string, args ...any) *redis.Cmd {
	cmdArgs := make([]any, 0, 3+len(keys)+len(args))
	cmdArgs = append(cmdArgs, "evalsha", s.Hash(), len(keys))
	for _, k := range keys {
		cmdArgs = append(cmdArgs, k)
	}
	return redis.NewCmd(ctx, append(cmdArgs, args...)...)
}

// IsNoScript reports whether err is Redis's NOSCRIPT reply to EVALSHA.
func IsNoScript(err error) bool {
	return err != nil && redis.HasErrorPrefix(err, "NOSCRIPT")
}
