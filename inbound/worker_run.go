package inbound

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/internal/backoff"
)

// run is the state of one Worker.Run: the messages read and not started,
// per partition, and which partitions are being handled.
type run struct {
	w     Worker
	limit int // most messages held not started

	mu       sync.Mutex
	cond     *sync.Cond
	queues   map[int][]Message // per partition, in queue order
	ready    []int             // partitions with messages, not running: FIFO
	running  map[int]bool      // partitions a slot is handling
	held     int               // messages in queues
	stopping bool
	space    chan struct{} // a slot took a message: the reader may read more
}

func newRun(w Worker) *run {
	r := &run{w: w, limit: w.Concurrency * w.Batch, queues: map[int][]Message{}, running: map[int]bool{}, space: make(chan struct{}, 1)}
	r.cond = sync.NewCond(&r.mu)
	return r
}

// readErrorBackoff spaces reads that fail (the queue is unreachable).
var readErrorBackoff = backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second, Jitter: 0.2}

// readLoop reads messages until ctx ends, holding at most limit not
// started.
func (r *run) readLoop(ctx context.Context) {
	failures := 0
	for ctx.Err() == nil {
		r.mu.Lock()
		full := r.held >= r.limit
		r.mu.Unlock()
		if full {
			select {
			case <-ctx.Done():
				return
			case <-r.space:
			}
			continue
		}
		ms, err := r.w.Consumer.Read(ctx, r.w.Name, r.w.Batch, r.w.Block)
		if err != nil && ctx.Err() == nil {
			failures++
			r.w.Log.Warn("inbound read failed", zap.String("worker", r.w.Name), zap.Int("attempt", failures), zap.Error(err))
			if !sleep(ctx, readErrorBackoff.Delay(failures)) {
				r.add(ms)
				return
			}
		} else if err == nil {
			failures = 0
		}
		r.add(ms)
	}
}

// add queues messages for the slots.
func (r *run) add(ms []Message) {
	if len(ms) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range ms {
		p, _, err := parseID(m.ID, r.w.Consumer.Config().Partitions)
		if err != nil {
			p = -1 // unreachable for the queue's own ids; kept in order anyway
		}
		// A partition is in ready exactly when it has messages held and no
		// slot handles it.
		q := r.queues[p]
		if len(q) == 0 && !r.running[p] {
			r.ready = append(r.ready, p)
		}
		r.queues[p] = append(q, m)
		r.held++
	}
	r.cond.Broadcast()
}

// slot handles one message at a time from the partition that waited
// longest, until the run stops.
func (r *run) slot(ctx, hctx context.Context) {
	for {
		r.mu.Lock()
		for len(r.ready) == 0 && !r.stopping {
			r.cond.Wait()
		}
		if r.stopping {
			r.mu.Unlock()
			return
		}
		p := r.ready[0]
		r.ready = r.ready[1:]
		m := r.queues[p][0]
		r.queues[p] = r.queues[p][1:]
		r.held--
		r.running[p] = true
		r.mu.Unlock()
		select {
		case r.space <- struct{}{}:
		default:
		}

		r.w.handle(ctx, hctx, &m)

		r.mu.Lock()
		delete(r.running, p)
		if len(r.queues[p]) > 0 {
			r.ready = append(r.ready, p) // behind the others: no partition starves
			r.cond.Signal()
		} else {
			delete(r.queues, p)
		}
		r.mu.Unlock()
	}
}

// keepHeld extends, every third of the visibility timeout, the messages
// read and not started yet, until ctx ends: a message waiting behind a
// slow one of its partition must not be claimed again meanwhile (by
// another worker, or by this one, which would then hold it twice). A
// message no longer held is dropped: whoever claimed it handles it.
func (r *run) keepHeld(ctx context.Context) {
	t := time.NewTicker(r.w.Consumer.Config().VisibilityTimeout / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		var held []Message
		for _, q := range r.queues {
			held = append(held, q...)
		}
		r.mu.Unlock()
		for i := range held {
			cctx, cancel := context.WithTimeout(ctx, callTimeout)
			err := r.w.Consumer.Extend(cctx, r.w.Name, &held[i])
			cancel()
			if errors.Is(err, ErrNotHeld) {
				r.drop(held[i].ID)
			} else if err != nil && ctx.Err() == nil {
				r.w.Log.Warn("inbound extend failed", r.w.fields(&held[i], zap.Error(err))...)
			}
		}
	}
}

// drop forgets the held message id.
func (r *run) drop(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for p, q := range r.queues {
		for i, m := range q {
			if m.ID != id {
				continue
			}
			r.queues[p] = append(q[:i:i], q[i+1:]...)
			r.held--
			if len(r.queues[p]) == 0 && !r.running[p] {
				delete(r.queues, p)
				r.ready = slices.DeleteFunc(r.ready, func(x int) bool { return x == p })
			}
			return
		}
	}
}

// stop makes the slots exit once their current message is done.
func (r *run) stop() {
	r.mu.Lock()
	r.stopping = true
	r.cond.Broadcast()
	r.mu.Unlock()
}

// releaseBuffered gives the messages read and not started back to the
// queue, claimable at once by another worker.
func (r *run) releaseBuffered() {
	r.mu.Lock()
	var ms []Message
	for _, q := range r.queues {
		ms = append(ms, q...)
	}
	r.queues, r.ready, r.held = map[int][]Message{}, nil, 0
	r.mu.Unlock()
	if len(ms) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if err := r.w.Consumer.Release(ctx, r.w.Name, ms); err != nil {
		r.w.Log.Warn("inbound release failed", zap.String("worker", r.w.Name), zap.Int("messages", len(ms)), zap.Error(err))
	}
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
