package history

import (
	"context"
	"sync"
	"time"
)

// MemoryOptions are [Memory]'s dependencies.
type MemoryOptions struct {
	// Now is the clock that decides when an idle stream is dropped.
	// Defaults to time.Now; tests pass a fake clock.
	Now func() time.Time
	// Publish, when set, is how Append publishes an event's live envelope
	// on its channel (the in-process bus, in embedded mode). It is called
	// with the history's lock held, so live order is history order: it
	// must not block nor call back into the Memory. Nil publishes nothing.
	Publish func(channel string, msg []byte)
}

// Memory is the history kept in this process, for the embedded mode: a
// ring of the last Size events per stream, with the semantics of [Redis]:
// a stream idle (no append) for TTL is dropped, and the next append or
// Position creates it again with a new epoch. Its methods are safe for
// concurrent use; it starts no goroutine.
type Memory struct {
	cfg     Config
	now     func() time.Time
	publish func(channel string, msg []byte)

	mu        sync.Mutex
	streams   map[string]*ring
	lastSweep time.Time
}

// ring is one stream: its epoch, last offset and its latest events.
type ring struct {
	epoch   string
	last    uint64
	buf     []Event // circular, at most Size; buf[start] is the oldest
	start   int
	touched time.Time // creation or last append: the TTL counts from it
}

// NewMemory returns an empty in-memory history.
func NewMemory(cfg Config, opts MemoryOptions) *Memory {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Memory{cfg: cfg.withDefaults(), now: opts.Now, publish: opts.Publish, streams: map[string]*ring{}}
}

// streamLocked returns stream's ring, dropping it when it has expired, and
// creating it when create is set. It may return nil only when create is
// not set.
func (m *Memory) streamLocked(stream string, now time.Time, create bool) *ring {
	r := m.streams[stream]
	if r != nil && now.Sub(r.touched) >= m.cfg.TTL {
		delete(m.streams, stream)
		r = nil
	}
	if r == nil && create {
		r = &ring{epoch: newEpoch(), touched: now}
		m.streams[stream] = r
	}
	return r
}

// sweepLocked drops every expired stream, at most once per TTL, so that
// streams nobody appends to again do not stay in memory: a stream lives
// less than two TTLs after its last append.
func (m *Memory) sweepLocked(now time.Time) {
	if now.Sub(m.lastSweep) < m.cfg.TTL {
		return
	}
	m.lastSweep = now
	for name, r := range m.streams {
		if now.Sub(r.touched) >= m.cfg.TTL {
			delete(m.streams, name)
		}
	}
}

// Append appends data (copied) to stream and, when channel is not empty
// and a Publish option was given, publishes its live envelope. See
// [Redis.Append].
func (m *Memory) Append(ctx context.Context, stream string, data []byte, channel string) (Position, error) {
	if err := checkStream(stream); err != nil {
		return Position{}, err
	}
	if err := ctx.Err(); err != nil {
		return Position{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var pos Position
	if !m.cfg.Off() {
		now := m.now()
		m.sweepLocked(now)
		r := m.streamLocked(stream, now, true)
		r.last++
		r.touched = now
		e := Event{Offset: r.last, Data: append([]byte(nil), data...)}
		if len(r.buf) < m.cfg.Size {
			r.buf = append(r.buf, e)
		} else {
			r.buf[r.start] = e
			r.start = (r.start + 1) % len(r.buf)
		}
		pos = Position{Epoch: r.epoch, Offset: r.last}
	}
	if channel != "" && m.publish != nil {
		m.publish(channel, EncodeLive(stream, pos, data))
	}
	return pos, nil
}

// Position returns stream's current position, creating the stream when
// it does not exist. See [Redis.Position].
func (m *Memory) Position(ctx context.Context, stream string) (Position, error) {
	if err := checkStream(stream); err != nil {
		return Position{}, err
	}
	if err := ctx.Err(); err != nil {
		return Position{}, err
	}
	if m.cfg.Off() {
		return Position{}, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.streamLocked(stream, m.now(), true)
	return Position{Epoch: r.epoch, Offset: r.last}, nil
}

// Since returns the events of stream after pos, at most limit. See
// [Redis.Since].
func (m *Memory) Since(ctx context.Context, stream string, pos Position, limit int) (Result, error) {
	if err := checkStream(stream); err != nil {
		return Result{}, err
	}
	if err := checkLimit(limit); err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	if m.cfg.Off() {
		return Result{}, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.streamLocked(stream, m.now(), false)
	if r == nil {
		return Result{}, nil
	}
	var kept []Event
	for i := range r.buf {
		e := r.buf[(r.start+i)%len(r.buf)]
		if e.Offset > pos.Offset {
			kept = append(kept, e)
			if len(kept) == limit {
				break
			}
		}
	}
	return recoverFrom(pos, Position{Epoch: r.epoch, Offset: r.last}, kept), nil
}

// Forget drops every stream, as a restart of the process would: the next
// append to a stream starts a new epoch. For tests and operators.
func (m *Memory) Forget() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.streams)
}
