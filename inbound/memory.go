package inbound

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// Memory is the in-process queue of embedded mode, with the semantics of
// [Redis]: partitions, one consumer group, visibility timeout, delivery
// counts, dead letters, the length cap. It keeps nothing across restarts.
// Its methods are safe for concurrent use; it starts no goroutine. It
// implements [Producer], [Consumer] and [Admin].
type Memory struct {
	cfg Config
	now func() time.Time

	mu      sync.Mutex
	parts   []*memPartition
	dead    []DeadLetter
	deadIDs idGen
	// redelivered counts deliveries after the first (Stats).
	redelivered int64
	wake        chan struct{} // closed and replaced when a message is added
}

// MemoryOptions are the seams of a [Memory].
type MemoryOptions struct {
	// Now is the clock visibility timeouts and ids are measured with.
	// Defaults to time.Now; tests pass a fake clock.
	Now func() time.Time
}

// memPartition is one partition: its live entries in queue order.
type memPartition struct {
	entries []*memEntry          // queue order; done entries are dropped lazily
	byID    map[string]*memEntry // live entries by entry id
	next    int                  // index in entries of the first never delivered
	done    int                  // done entries still in entries
	ids     idGen
}

// memEntry is one message in a partition.
type memEntry struct {
	id         string // entry id "ms-seq"
	m          Message
	delivered  bool
	done       bool
	owner      string
	at         time.Time // start of the current visibility timeout
	deliveries int
}

// idGen makes Redis-like stream entry ids "ms-seq" that always grow.
type idGen struct{ ms, seq uint64 }

func (g *idGen) next(now time.Time) string {
	ms := uint64(max(now.UnixMilli(), 0))
	if ms > g.ms {
		g.ms, g.seq = ms, 0
	} else {
		g.seq++
	}
	return strconv.FormatUint(g.ms, 10) + "-" + strconv.FormatUint(g.seq, 10)
}

// NewMemory returns an empty in-process queue.
func NewMemory(cfg Config, opts MemoryOptions) *Memory {
	cfg = cfg.withDefaults()
	if opts.Now == nil {
		opts.Now = time.Now
	}
	m := &Memory{cfg: cfg, now: opts.Now, wake: make(chan struct{}),
		parts: make([]*memPartition, cfg.Partitions)}
	for i := range m.parts {
		m.parts[i] = &memPartition{byID: map[string]*memEntry{}}
	}
	return m
}

// Config returns the queue's configuration, defaults applied.
func (q *Memory) Config() Config { return q.cfg }

// Enqueue appends m to the partition of m.UserID (see [Producer]).
func (q *Memory) Enqueue(ctx context.Context, m Message) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	m.ID, m.Deliveries = "", 0
	m.Data = append([]byte(nil), m.Data...) // the caller's buffer stays the caller's
	p := Partition(m.UserID, q.cfg.Partitions)
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.addLocked(p, m)
}

// addLocked appends m to partition p unless it is full.
func (q *Memory) addLocked(p int, m Message) (string, error) {
	part := q.parts[p]
	if len(part.byID) >= q.cfg.MaxLen {
		return "", fmt.Errorf("%w: partition %d holds %d messages", ErrFull, p, q.cfg.MaxLen)
	}
	e := &memEntry{id: part.ids.next(q.now()), m: m}
	part.entries = append(part.entries, e)
	part.byID[e.id] = e
	close(q.wake)
	q.wake = make(chan struct{})
	return messageID(p, e.id), nil
}

// EnsureGroup does nothing: the in-process queue has its one group.
func (q *Memory) EnsureGroup(context.Context) error { return nil }

// Read returns consumer's claimable messages, then new ones (see
// [Consumer]), waiting up to block (real time) for new ones.
func (q *Memory) Read(ctx context.Context, consumer string, count int, block time.Duration) ([]Message, error) {
	count = max(count, 1)
	var timer *time.Timer
	for {
		q.mu.Lock()
		out := q.claimLocked(consumer, count)
		out = append(out, q.readNewLocked(consumer, count)...)
		wake := q.wake
		q.mu.Unlock()
		if len(out) > 0 || block <= 0 {
			return out, nil
		}
		if timer == nil {
			timer = time.NewTimer(block)
			defer timer.Stop()
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-timer.C:
			block = 0 // one last look, then return
		case <-wake:
		}
	}
}

// claimLocked claims the messages delivered longer than the visibility
// timeout ago, at most count per partition; those delivered more than
// MaxDeliveries times go to the dead letters.
func (q *Memory) claimLocked(consumer string, count int) []Message {
	now := q.now()
	var out []Message
	for p, part := range q.parts {
		n := 0
		for _, e := range part.entries[:part.next] {
			if n == count {
				break
			}
			if e.done || !e.delivered || now.Sub(e.at) < q.cfg.VisibilityTimeout {
				continue
			}
			e.owner, e.at = consumer, now
			e.deliveries++
			m := e.message(p)
			if e.deliveries > q.cfg.MaxDeliveries {
				m.Deliveries-- // this delivery does not happen
				q.deadLetterLocked(&m, ErrTooManyDeliveries)
				continue
			}
			out = append(out, m)
			n++
		}
	}
	q.redelivered += int64(len(out))
	return out
}

// readNewLocked delivers messages never delivered, at most count per
// partition.
func (q *Memory) readNewLocked(consumer string, count int) []Message {
	now := q.now()
	var out []Message
	for p, part := range q.parts {
		for n := 0; n < count && part.next < len(part.entries); part.next++ {
			e := part.entries[part.next]
			if e.done {
				continue
			}
			e.delivered, e.owner, e.at, e.deliveries = true, consumer, now, 1
			out = append(out, e.message(p))
			n++
		}
	}
	return out
}

// message is e as a consumer receives it: a copy it owns.
func (e *memEntry) message(p int) Message {
	m := e.m
	m.ID, m.Deliveries = messageID(p, e.id), e.deliveries
	m.Data = append([]byte(nil), e.m.Data...)
	return m
}
