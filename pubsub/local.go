package pubsub

import (
	"context"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
)

// LocalBus is a [Bus] inside one process, for the embedded single-instance
// mode. It has the same contract as [RedisBus] (events are encoded and
// decoded, so invalid events fail Publish the same way) but never loses an
// event while Run is running: its queue is unbounded. Events published while
// Run is not running are discarded, as Redis pub/sub would.
//
// Publish is safe for concurrent use; Run may run once at a time.
type LocalBus struct {
	log          *zap.Logger
	onSubscribed atomic.Pointer[func()]
	malformed    atomic.Uint64

	mu      sync.Mutex
	running bool
	queue   []Event
	wake    chan struct{} // capacity 1: "the queue is not empty"
}

// NewLocalBus returns an in-process bus. It starts nothing.
func NewLocalBus(log *zap.Logger) *LocalBus {
	return &LocalBus{log: log, wake: make(chan struct{}, 1)}
}

// OnSubscribed sets fn to be called once when Run starts, before any event
// is handed to the handler. Set it before Run; fn must not block.
func (b *LocalBus) OnSubscribed(fn func()) { b.onSubscribed.Store(&fn) }

// Publish validates e and queues it for the running handler. It returns the
// [Event.Encode] error for an invalid event; it never blocks.
func (b *LocalBus) Publish(ctx context.Context, e Event) error {
	payload, err := e.Encode()
	if err != nil {
		return err
	}
	// Decode gives the handler its own copy (Data included), as over Redis.
	e, err = Decode(payload)
	if err != nil {
		return err
	}
	b.enqueue(e)
	return nil
}

// Deliver decodes msg as it would arrive over Redis ([DecodeAny]: a JSON
// event or a history live envelope) and queues it for the running handler.
// It is the in-process history's publish hook: it never blocks and never
// calls back into the caller, and events are handed to the handler in the
// order Deliver was called. A malformed msg is logged and skipped.
func (b *LocalBus) Deliver(msg []byte) {
	e, err := DecodeAny(msg)
	if err != nil {
		prefix := msg[:min(len(msg), payloadPrefix)]
		b.log.Warn("pub/sub event skipped", zap.String("channel", "local"), zap.Error(shortErr(err)),
			zap.Int("bytes", len(msg)), zap.ByteString("prefix", prefix),
			zap.Uint64("suppressed", 0), zap.Uint64("total", b.malformed.Add(1)))
		return
	}
	b.enqueue(e)
}

// enqueue queues e for the running handler, or drops it when Run is not
// running (as Redis pub/sub would).
func (b *LocalBus) enqueue(e Event) {
	b.mu.Lock()
	if !b.running {
		b.mu.Unlock()
		return
	}
	b.queue = append(b.queue, e)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// Run hands every event published from now on to h, from one goroutine, in
// publish order, until ctx is done. It returns nil, or [ErrAlreadyRunning].
func (b *LocalBus) Run(ctx context.Context, h Handler) error {
	b.mu.Lock()
	if b.running {
		b.mu.Unlock()
		return ErrAlreadyRunning
	}
	b.running = true
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.running, b.queue = false, nil
		b.mu.Unlock()
	}()

	b.log.Info("pub/sub subscribed", zap.String("bus", "local"))
	if fn := b.onSubscribed.Load(); fn != nil && *fn != nil {
		(*fn)()
	}
	for {
		b.mu.Lock()
		batch := b.queue
		b.queue = nil
		b.mu.Unlock()
		for i, e := range batch {
			if ctx.Err() != nil {
				return nil
			}
			h(ctx, e)
			batch[i] = Event{} // let the payload go
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-b.wake:
		}
	}
}

// OnGap accepts a callback for symmetry with [RedisBus.OnGap]; a LocalBus
// never loses events, so fn is never called.
func (b *LocalBus) OnGap(fn func(reason string)) {}
