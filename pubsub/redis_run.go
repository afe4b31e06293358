package pubsub

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// Reconnect backoff of the subscriber: the first retry is immediate
// (go-redis has usually re-dialled already), then it doubles up to the cap.
const (
	backoffBase = 50 * time.Millisecond
	backoffMax  = 2 * time.Second
	// payloadPrefix is how much of a bad payload a log line may show.
	payloadPrefix = 16
)

// Run subscribes to the channel and hands every decoded event to h from one
// goroutine, in arrival order, until ctx is done. Subscription failures
// never end Run: it logs them, reports them through OnGap and subscribes
// again with backoff. Run returns nil after every goroutine it started has
// exited, or [ErrAlreadyRunning].
func (b *RedisBus) Run(ctx context.Context, h Handler) error {
	if !b.running.CompareAndSwap(false, true) {
		return ErrAlreadyRunning
	}
	defer b.running.Store(false)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	queue := make(chan Event, b.cfg.Buffer)
	s := &subscriber{bus: b, queue: queue}
	s.touch()

	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); s.read(ctx) }()
	go func() { defer wg.Done(); s.health(ctx) }()
	go func() { defer wg.Done(); <-ctx.Done(); s.close() }()
	go func() { defer wg.Done(); dispatch(ctx, queue, h) }()
	wg.Wait()
	return nil
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

// subscriber owns the *redis.PubSub of one Run. The reader goroutine is the
// only one that receives; the health goroutine pings and may kill the
// connection; close ends it for good.
type subscriber struct {
	bus   *RedisBus
	queue chan<- Event

	lastActivity atomic.Int64 // unix nanos of the last thing received
	isSubscribed atomic.Bool

	mu     sync.Mutex
	ps     *redis.PubSub
	closed bool
	killed bool // the health check closed ps; the reader must open a new one
}

func (s *subscriber) touch() { s.lastActivity.Store(time.Now().UnixNano()) }

// open replaces the PubSub with a new one subscribed to the channel, or
// returns nil once close was called. The SUBSCRIBE itself may fail; the next
// Receive then reports the error and go-redis re-dials on the one after.
func (s *subscriber) open(ctx context.Context) *redis.PubSub {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	ps := s.bus.rdb.Subscribe(ctx) // no channel yet: no I/O under the lock
	s.ps, s.killed = ps, false
	s.mu.Unlock()
	_ = ps.Subscribe(ctx, s.bus.cfg.Channel)
	return ps
}

// current returns the PubSub to use after a receive error: the same one, a
// new one if the health check killed it, or nil when the subscriber is
// closed.
func (s *subscriber) current(ctx context.Context, ps *redis.PubSub) *redis.PubSub {
	s.mu.Lock()
	closed, killed := s.closed, s.killed
	s.mu.Unlock()
	switch {
	case closed:
		return nil
	case killed:
		return s.open(ctx)
	}
	return ps
}

// close ends the subscription for good; a blocked Receive returns.
func (s *subscriber) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.ps != nil {
		_ = s.ps.Close()
	}
}

// kill closes the current connection so that the reader subscribes again
// on a fresh one.
func (s *subscriber) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.ps == nil || s.killed {
		return
	}
	s.killed = true
	_ = s.ps.Close()
}

// read is the reader loop: receive, decode, queue; on errors, report the
// gap once per outage and retry with backoff.
func (s *subscriber) read(ctx context.Context) {
	b := s.bus
	ps := s.open(ctx)
	var (
		ever    bool      // a subscription was ever confirmed
		lostAt  time.Time // when the current outage began
		attempt int       // failed receives in the current outage
	)
	for ps != nil {
		msg, err := ps.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if s.isSubscribed.Swap(false) {
				lostAt = time.Now()
				b.log.Warn("pub/sub subscription lost", zap.Error(err))
				b.gap("subscription lost: " + err.Error())
			}
			attempt++
			delay := backoff(attempt)
			b.log.Debug("pub/sub resubscribing", zap.Int("attempt", attempt),
				zap.Duration("backoff", delay), zap.Error(err))
			if !sleep(ctx, delay) {
				return
			}
			ps = s.current(ctx, ps)
			continue
		}
		s.touch()
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" || s.isSubscribed.Swap(true) {
				continue
			}
			if ever {
				b.log.Info("pub/sub resubscribed", zap.Int("attempts", attempt),
					zap.Duration("down", time.Since(lostAt)))
			} else {
				b.log.Info("pub/sub subscribed")
			}
			ever, attempt = true, 0
			b.subscribed()
		case *redis.Message:
			s.deliver(m.Payload)
		}
	}
}

// deliver decodes one payload and queues it without ever blocking the
// reader: a bad payload is counted and skipped, an event that does not fit
// the buffer is counted, dropped and reported as a gap.
func (s *subscriber) deliver(payload string) {
	b := s.bus
	e, err := Decode([]byte(payload))
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
	case s.queue <- e:
	default:
		b.dropped.Add(1)
		if ok, held := b.dropLog.allow(time.Now()); ok {
			b.log.Error("pub/sub event dropped: handler too slow, buffer full",
				zap.String("kind", string(e.Kind)), zap.Int("buffer", b.cfg.Buffer),
				zap.Uint64("suppressed", held), zap.Uint64("total", b.dropped.Load()))
		}
		b.gap("buffer overflow")
	}
}

// health pings an idle subscription and kills one that stopped answering.
func (s *subscriber) health(ctx context.Context) {
	every := s.bus.cfg.PingInterval
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !s.isSubscribed.Load() {
			continue
		}
		idle := time.Since(time.Unix(0, s.lastActivity.Load()))
		switch {
		case idle >= 3*every:
			s.bus.log.Warn("pub/sub connection unresponsive, reconnecting", zap.Duration("idle", idle))
			s.kill()
		case idle >= every:
			s.mu.Lock()
			ps := s.ps
			s.mu.Unlock()
			if ps != nil {
				_ = ps.Ping(ctx) // the answer arrives through Receive; an error shows up there too
			}
		}
	}
}

// backoff returns the wait before retry number attempt (1-based).
func backoff(attempt int) time.Duration {
	if attempt <= 1 {
		return 0
	}
	d := backoffBase
	for i := 2; i < attempt && d < backoffMax; i++ {
		d *= 2
	}
	return min(d, backoffMax)
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
