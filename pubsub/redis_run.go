package pubsub

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"
)

// payloadPrefix is how much of a bad payload a log line may show.
const payloadPrefix = 16

// Run subscribes to the channel and hands every decoded event to h from one
// goroutine, in arrival order, until ctx is done. Subscription failures
// never end Run: an error reply (a SUBSCRIBE refused by an ACL, say), a
// broken connection or a connection that stops answering is logged,
// reported through OnGap once per outage, and followed by a fresh
// connection and SUBSCRIBE, with backoff, until one is confirmed. Run
// returns nil after every goroutine it started has exited, or
// [ErrAlreadyRunning].
func (b *RedisBus) Run(ctx context.Context, h Handler) error {
	if !b.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer b.running.Store(false)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan Event, b.cfg.Buffer)
	var wg sync.WaitGroup
	b.start(ctx, &wg, queue)
	defer b.sub.Store(nil)
	wg.Add(1)
	go func() { defer wg.Done(); dispatch(ctx, queue, h) }()
	wg.Wait()
	return nil
}

// start starts the subscription's goroutines (reader, health check,
// closer), which queue events until ctx is done; wg counts them.
func (b *RedisBus) start(ctx context.Context, wg *sync.WaitGroup, queue chan<- Event) {
	s := newSubscriber(b, queue)
	b.sub.Store(s)
	wg.Add(3)
	go func() { defer wg.Done(); s.read(ctx) }()
	go func() { defer wg.Done(); s.health(ctx) }()
	go func() { defer wg.Done(); <-ctx.Done(); s.close() }()
}

// dispatch calls h for each queued event until ctx is done.
func dispatch(ctx context.Context, queue <-chan Event, h Handler) {
	for {
		select {
		case <-ctx.Done():
			return
		case e := <-queue:
			h(ctx, e)
		}
	}
}

// deliver decodes one payload and queues it without ever blocking the
// reader: a bad payload is counted and skipped, an event that does not fit
// the buffer is counted, dropped and reported as a gap.
func (b *RedisBus) deliver(queue chan<- Event, payload string) {
	if b.intercept != nil && b.intercept(payload) {
		return
	}
	e, err := DecodeAny([]byte(payload))
	if err != nil {
		b.malformed.Add(1)
		if ok, held := b.badLog.allow(time.Now()); ok {
			prefix := payload
			if len(prefix) > payloadPrefix {
				prefix = prefix[:payloadPrefix]
			}
			b.log.Warn("pub/sub event skipped", zap.Error(shortErr(err)),
				zap.Int("bytes", len(payload)), zap.String("prefix", prefix),
				zap.Uint64("suppressed", held), zap.Uint64("total", b.malformed.Load()))
		}
		return
	}
	select {
	case queue <- e:
	default:
		b.dropped.Add(1)
		if ok, held := b.dropLog.allow(time.Now()); ok {
			b.log.Error("pub/sub event dropped",
				zap.String("kind", string(e.Kind)), zap.Int("buffer", b.cfg.Buffer),
				zap.Uint64("suppressed", held), zap.Uint64("total", b.dropped.Load()))
		}
		b.gap("buffer overflow")
		// The subscription itself is intact and delivers what comes next:
		// report it subscribed again, as after a redial, so the instance
		// runs the check that follows a gap instead of waiting for a
		// resubscription that never comes (it would stay "not
		// subscribed", and unready, until its connection dropped).
		b.subscribed()
	}
}

// sleep waits d or until ctx is done, and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// shortErr keeps a decode error's text short: JSON syntax errors may quote
// parts of the payload.
func shortErr(err error) error {
	for _, s := range []error{ErrTooLarge, ErrVersion, ErrUnknownKind, ErrMalformed} {
		if errors.Is(err, s) {
			msg := err.Error()
			if len(msg) > 120 {
				return errors.New(msg[:120] + "...")
			}
			return err
		}
	}
	return err
}
