package pubsub

import "context"

// Handler receives the events of a bus. A bus calls it from one goroutine, in
// the order the events arrived; a slow handler delays the events after it.
type Handler func(ctx context.Context, e Event)

// Bus carries events between gateway instances. Implementations: [RedisBus]
// (across processes) and [LocalBus] (one process).
type Bus interface {
	// Publish sends e to every running subscriber, this instance's included.
	// It returns an error for an invalid event or when the send failed; the
	// caller decides what to do. Safe for concurrent use.
	Publish(ctx context.Context, e Event) error
	// Run subscribes and hands every decoded event (this instance's own
	// included) to h, from one goroutine, in order, until ctx is done. It
	// returns after every goroutine it started has exited.
	Run(ctx context.Context, h Handler) error
}
