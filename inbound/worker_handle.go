package inbound

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/internal/backoff"
	"github.com/sessiongate/sessiongate/internal/logfield"
)

// handle runs m's handler until it succeeds (ack), fails for good or too
// often (dead letter), or the worker stops (m stays pending). ctx is the
// worker's, hctx the handlers'.
func (w Worker) handle(ctx, hctx context.Context, m *Message) {
	h := w.Handlers[m.Event]
	if h == nil {
		h = w.Default
	}
	if h == nil {
		w.deadLetter(m, fmt.Errorf("%w %q", ErrNoHandler, m.Event))
		return
	}
	policy := backoff.Policy{Min: w.BackoffMin, Max: w.BackoffMax, Jitter: 0.2}
	maxDeliveries := w.Consumer.Config().MaxDeliveries
	for attempt := 1; ; attempt++ {
		err := w.call(hctx, h, m)
		if err == nil {
			w.ack(m)
			return
		}
		if hctx.Err() != nil {
			return // the stop timeout cut it short: it stays pending
		}
		if IsPermanent(err) || m.Deliveries >= maxDeliveries {
			w.deadLetter(m, err)
			return
		}
		w.Log.Warn("inbound handler failed", w.fields(m, zap.Error(err))...)
		if !w.holdFor(ctx, m, policy.Delay(attempt)) {
			return // stopping, or no longer ours: it stays pending
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
		err = w.Consumer.Retry(cctx, w.Name, m)
		cancel()
		if err != nil {
			if !errors.Is(err, ErrNotHeld) {
				w.Log.Warn("inbound retry failed", w.fields(m, zap.Error(err))...)
			}
			return
		}
	}
}

// call runs h on m, extending m's visibility timeout while it runs, and
// turns a panic into an error: one bad message does not kill the worker.
func (w Worker) call(ctx context.Context, h Handler, m *Message) (err error) {
	stop := w.keepAlive(m)
	defer stop()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("inbound: handler panicked: %v", p)
		}
	}()
	c := *m // what the handler does to its message is its own
	return h(ctx, &c)
}

// holdFor waits d, extending m's visibility timeout meanwhile. It reports
// false when ctx ended first.
func (w Worker) holdFor(ctx context.Context, m *Message, d time.Duration) bool {
	stop := w.keepAlive(m)
	defer stop()
	return sleep(ctx, d)
}

// keepAlive extends m's visibility timeout every third of it until the
// returned stop is called, so a slow handler keeps its message. It stops
// early when m is no longer held.
func (w Worker) keepAlive(m *Message) (stop func()) {
	every := w.Consumer.Config().VisibilityTimeout / 3
	id := *m // the handler may change its copy
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
			err := w.Consumer.Extend(ctx, w.Name, &id)
			cancel()
			if errors.Is(err, ErrNotHeld) {
				w.Log.Warn("inbound message lost", w.fields(m, zap.String("reason", "claimed by another worker"))...)
				return
			}
			if err != nil {
				w.Log.Warn("inbound extend failed", w.fields(m, zap.Error(err))...)
			}
		}
	}()
	return func() { close(done); <-exited }
}

// ack acks m, done.
func (w Worker) ack(m *Message) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if err := w.Consumer.Ack(ctx, m.ID); err != nil {
		// Not acked: it is delivered again after the visibility timeout.
		w.Log.Error("inbound ack failed", w.fields(m, zap.Error(err))...)
	}
}

// deadLetter moves m to the dead letters with cause.
func (w Worker) deadLetter(m *Message, cause error) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if err := w.Consumer.DeadLetter(ctx, m, cause); err != nil {
		w.Log.Error("inbound dead letter failed", w.fields(m, zap.Error(err))...)
		return
	}
	w.Log.Warn("inbound message dead-lettered", w.fields(m, zap.Error(cause))...)
}

// fields are the log fields of m, then extra.
func (w Worker) fields(m *Message, extra ...zap.Field) []zap.Field {
	return append([]zap.Field{zap.String("worker", w.Name), zap.String("msg_id", m.ID),
		zap.String("event", m.Event), zap.Int("deliveries", m.Deliveries),
		zap.String("user_id", m.UserID), logfield.Handle(m.Handle)}, extra...)
}
