package inbound

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Handler handles one message. It returns nil when the message is done
// (the worker acks it), an error to have it retried (up to MaxDeliveries
// deliveries in all), or an error wrapped with [Permanent] to send it to
// the dead letters at once. ctx ends StopTimeout after the worker was
// asked to stop. Delivery is at least once: a handler may see a message
// again (after a crash, or a stall past the visibility timeout), so one
// whose effect must not repeat keys it on m.ID.
type Handler func(ctx context.Context, m *Message) error

// Worker consumes the queue: a handler per event name, several partitions
// at once, each partition's messages one at a time in queue order, retries
// with backoff, dead letters, graceful stop. Fill the fields and call Run.
//
// Per-user order holds within a worker. Several workers (processes) of
// one group share the partitions message by message, so two of a user's
// messages may then be handled at once by two workers; an application
// that needs strict order across workers runs one worker, or orders by
// [Message.Received] itself.
type Worker struct {
	// Consumer is the queue: an [*Redis] or [*Memory].
	Consumer Consumer
	// Name is this worker's consumer name in the group, unique among the
	// group's live workers. Defaults to "<hostname>-<pid>".
	Name string
	// Handlers maps a message's Event to its handler.
	Handlers map[string]Handler
	// Default handles events without a handler in Handlers. When nil,
	// such messages go to the dead letters with [ErrNoHandler].
	Default Handler
	// Concurrency is how many partitions are handled at once (one message
	// each). Defaults to 8.
	Concurrency int
	// Batch is how many messages one read takes per partition; the worker
	// holds at most Concurrency×Batch messages not yet started. Defaults
	// to 16.
	Batch int
	// Block is how long one read waits for new messages; Run notices the
	// end of its context within it. Defaults to 1s.
	Block time.Duration
	// BackoffMin and BackoffMax bound the wait before a failed message is
	// retried: BackoffMin after the first failure, doubling, at most
	// BackoffMax, with ±20% jitter. Default to 100ms and 10s.
	BackoffMin, BackoffMax time.Duration
	// StopTimeout bounds how long Run waits, once its context ended, for
	// running handlers to finish; then their context is cancelled and Run
	// returns [ErrStopTimeout]. Defaults to 30s.
	StopTimeout time.Duration
	// Log receives the worker's log lines. Defaults to a no-op logger.
	Log *zap.Logger
}

// Defaults of [Worker].
const (
	defaultConcurrency = 8
	defaultBatch       = 16
	defaultBlock       = time.Second
	defaultBackoffMin  = 100 * time.Millisecond
	defaultBackoffMax  = 10 * time.Second
	defaultStopTimeout = 30 * time.Second
	// callTimeout bounds one queue call made for a message (ack, retry,
	// dead letter), even while stopping.
	callTimeout = 10 * time.Second
)

// withDefaults returns w with every zero field set to its default.
func (w Worker) withDefaults() Worker {
	if w.Name == "" {
		host, _ := os.Hostname()
		w.Name = host + "-" + strconv.Itoa(os.Getpid())
	}
	if w.Concurrency <= 0 {
		w.Concurrency = defaultConcurrency
	}
	if w.Batch <= 0 {
		w.Batch = defaultBatch
	}
	if w.Block <= 0 {
		w.Block = defaultBlock
	}
	if w.BackoffMin <= 0 {
		w.BackoffMin = defaultBackoffMin
	}
	if w.BackoffMax <= 0 {
		w.BackoffMax = defaultBackoffMax
	}
	if w.StopTimeout <= 0 {
		w.StopTimeout = defaultStopTimeout
	}
	if w.Log == nil {
		w.Log = zap.NewNop()
	}
	return w
}

// Run consumes until ctx ends, then stops gracefully: it reads no more,
// lets the running handlers finish (at most StopTimeout), gives back the
// messages it had read but not started, and returns nil (or
// [ErrStopTimeout]). A message whose handler had not finished stays
// pending and is redelivered after the visibility timeout. It returns
// early with an error only when the group cannot be created.
func (w Worker) Run(ctx context.Context) error {
	if w.Consumer == nil {
		return errors.New("inbound: Worker.Consumer is nil")
	}
	w = w.withDefaults()
	if err := w.Consumer.EnsureGroup(ctx); err != nil {
		return err
	}
	r := newRun(w)
	hctx, cancelHandlers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelHandlers()
	var wg sync.WaitGroup
	for range w.Concurrency {
		wg.Go(func() { r.slot(ctx, hctx) })
	}
	w.Log.Info("inbound worker started", zap.String("worker", w.Name), zap.Int("concurrency", w.Concurrency))
	keeping := make(chan struct{})
	go func() { defer close(keeping); r.keepHeld(ctx) }()
	r.readLoop(ctx)
	<-keeping

	r.stop()
	w.Log.Info("inbound worker stopping", zap.String("worker", w.Name))
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(w.StopTimeout)
	defer t.Stop()
	var err error
	select {
	case <-done:
	case <-t.C:
		cancelHandlers()
		err = fmt.Errorf("%w (%s)", ErrStopTimeout, w.StopTimeout)
		w.Log.Error("inbound worker stop timed out", zap.String("worker", w.Name), zap.Duration("timeout", w.StopTimeout))
	}
	r.releaseBuffered()
	w.Log.Info("inbound worker stopped", zap.String("worker", w.Name))
	return err
}
