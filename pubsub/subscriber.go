package pubsub

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/internal/backoff"
)

// Resubscribe backoff. The first retry after losing a subscription that had
// been up for a while is immediate (most cuts are one killed connection);
// every further failure waits longer, with jitter so that instances cut by
// the same event do not hammer Redis in step.
const (
	retryMin    = 100 * time.Millisecond
	retryMax    = 2 * time.Second
	retryJitter = 0.2
	// failLogEvery bounds how often a long outage logs its failures at
	// warn level; every failure is logged at debug level.
	failLogEvery = 30 * time.Second
)

// subscriber owns the subscription of one Run. Each connection is a fresh
// *redis.PubSub used for one SUBSCRIBE: after any error it is closed and
// replaced, never reused, because go-redis keeps a connection whose
// SUBSCRIBE was refused (an error reply is not a broken connection) and a
// Receive on it would wait forever.
//
// The reader goroutine receives and opens connections; the health
// goroutine and [RedisBus.resubscribe] may cut the current one (kill), and
// close ends the subscriber for good.
type subscriber struct {
	bus   *RedisBus
	queue chan<- Event
	retry backoff.Policy
	// deadAfter is how long the current connection may stay silent, or
	// unconfirmed, before it is dropped: three ping intervals.
	deadAfter time.Duration
	// kick asks the health goroutine to drop a confirmed subscription that
	// does not deliver (see resubscribe). Capacity 1.
	kick chan struct{}

	lastActivity atomic.Int64 // unix nanos: last reply on the current connection, or its opening
	confirmed    atomic.Bool  // the current connection's SUBSCRIBE was confirmed

	mu     sync.Mutex
	ps     *redis.PubSub // nil between connections
	cut    error         // why ps was closed by someone other than the reader
	closed bool

	// Outage bookkeeping, owned by the reader goroutine.
	ever       bool      // a subscription was ever confirmed
	upSince    time.Time // when the current subscription was confirmed
	downSince  time.Time // when the current outage began
	attempt    int       // failures since the last stable subscription
	failLogged time.Time // last warn-level failure line of this outage
}

func newSubscriber(b *RedisBus, queue chan<- Event) *subscriber {
	return &subscriber{
		bus:       b,
		queue:     queue,
		retry:     backoff.Policy{Min: retryMin, Max: retryMax, Jitter: retryJitter},
		deadAfter: 3 * b.cfg.PingInterval,
		kick:      make(chan struct{}, 1),
		downSince: time.Now(),
	}
}

func (s *subscriber) touch() { s.lastActivity.Store(time.Now().UnixNano()) }

// read is the reader loop: open a connection, receive until it fails,
// report, back off, open the next, until ctx is done.
func (s *subscriber) read(ctx context.Context) {
	for {
		ps, err := s.open(ctx)
		if ps == nil {
			return
		}
		if err == nil {
			err = s.receive(ctx, ps)
		}
		if cut := s.discard(ps); cut != nil {
			err = cut
		}
		if ctx.Err() != nil {
			return
		}
		if !sleep(ctx, s.failed(err)) {
			return
		}
	}
}

// open starts a fresh connection subscribing to the channel, or returns nil
// once close was called. The SUBSCRIBE is only sent here: its confirmation
// (or refusal) arrives through Receive.
func (s *subscriber) open(ctx context.Context) (*redis.PubSub, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, nil
	}
	// No channel yet: no I/O under the lock. A shard channel gets a
	// connection of its own, routed by go-redis to the master serving the
	// channel's slot as the client knows it (one channel per connection:
	// go-redis routes a sharded connection by its first channel only).
	var ps *redis.PubSub
	if s.bus.sharded {
		ps = s.bus.rdb.SSubscribe(ctx)
	} else {
		ps = s.bus.rdb.Subscribe(ctx)
	}
	s.ps, s.cut = ps, nil
	s.confirmed.Store(false)
	s.touch()
	s.mu.Unlock()
	// Bound the dial and the write: a server that accepts and never answers
	// must not hold the reader (close waits for them too).
	sctx, cancel := context.WithTimeout(ctx, s.deadAfter)
	defer cancel()
	if s.bus.sharded {
		return ps, ps.SSubscribe(sctx, s.bus.cfg.Channel)
	}
	return ps, ps.Subscribe(sctx, s.bus.cfg.Channel)
}

// receive hands every message of ps to the queue until Receive fails, and
// returns that error. Any error ends the connection: a network error, an
// error reply (NOPERM for a refused SUBSCRIBE, or for anything else), or
// the connection being closed by kill or close.
func (s *subscriber) receive(ctx context.Context, ps *redis.PubSub) error {
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			return err
		}
		s.touch()
		switch m := msg.(type) {
		case *redis.Subscription:
			// "sunsubscribe" arrives unasked when the shard channel's slot
			// moved to another master: subscribe again where it is now.
			if m.Kind != "subscribe" && m.Kind != "ssubscribe" {
				return fmt.Errorf("%w: %s %s", errUnsubscribed, m.Kind, m.Channel)
			}
			s.subscribedOK()
		case *redis.Message:
			s.bus.deliver(s.queue, m.Payload)
		}
	}
}

// subscribedOK records a subscribe confirmation and reports it.
func (s *subscriber) subscribedOK() {
	b := s.bus
	now := time.Now()
	if s.confirmed.Swap(true) {
		// A second confirmation on one connection: go-redis re-dialled and
		// subscribed again on its own, and what was sent in between is lost.
		b.log.Warn("pub/sub subscription lost", zap.Error(errRedialled),
			zap.Duration("up", now.Sub(s.upSince)))
		b.gap("subscription lost: " + errRedialled.Error())
		s.downSince = now
	}
	if s.ever {
		b.log.Info("pub/sub resubscribed", zap.Int("attempts", s.attempt),
			zap.Duration("down", now.Sub(s.downSince)))
	} else {
		b.log.Info("pub/sub subscribed", zap.Int("attempts", s.attempt))
	}
	s.ever, s.upSince, s.failLogged = true, now, time.Time{}
	b.subscribed()
}

// failed reports the failure that ended a connection and returns how long
// to wait before the next one. Losing a confirmed subscription is a gap,
// reported once; the failed attempts that follow are only logged.
func (s *subscriber) failed(err error) time.Duration {
	b := s.bus
	now := time.Now()
	lost := s.confirmed.Load()
	if b.sharded {
		// The channel may have moved (MOVED, a failover, a migration):
		// have the cluster client learn the slots again before the next
		// attempt, which go-redis would otherwise route by its old map.
		if cc, ok := b.rdb.(*redis.ClusterClient); ok {
			cc.ReloadState(context.Background())
		}
	}
	if lost {
		up := now.Sub(s.upSince)
		if up >= b.cfg.PingInterval {
			s.attempt = 0 // it was stable: retry at once
		}
		s.downSince = now
		b.log.Warn("pub/sub subscription lost", zap.Error(err), zap.Duration("up", up))
		b.gap("subscription lost: " + err.Error())
	}
	s.attempt++
	delay := time.Duration(0)
	if s.attempt > 1 {
		delay = s.retry.Delay(s.attempt - 1)
	}
	if !lost && (s.failLogged.IsZero() || now.Sub(s.failLogged) >= failLogEvery) {
		s.failLogged = now
		b.log.Warn("pub/sub subscribe failed", zap.Error(err), zap.Int("attempt", s.attempt),
			zap.Duration("backoff", delay), zap.Duration("down", now.Sub(s.downSince)))
	}
	b.log.Debug("pub/sub resubscribing", zap.Int("attempt", s.attempt),
		zap.Duration("backoff", delay), zap.Error(err))
	return delay
}

// discard closes ps and returns why it was cut from outside the reader, if
// it was.
func (s *subscriber) discard(ps *redis.PubSub) (cut error) {
	s.mu.Lock()
	if s.ps == ps {
		cut = s.cut
		s.ps, s.cut = nil, nil
	}
	s.mu.Unlock()
	_ = ps.Close()
	return cut
}

// kill closes ps, if it is still the current connection and was not cut
// already, so that the reader's Receive fails with reason and the reader
// subscribes again on a fresh connection. It reports whether it did.
func (s *subscriber) kill(ps *redis.PubSub, reason error) bool {
	s.mu.Lock()
	if s.closed || s.ps != ps || s.cut != nil {
		s.mu.Unlock()
		return false
	}
	s.cut = reason
	s.mu.Unlock()
	_ = ps.Close() // outside the lock: Close waits for go-redis's own lock
	return true
}

// current returns the current connection, or nil between connections.
func (s *subscriber) current() *redis.PubSub {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ps
}

// close ends the subscription for good; a blocked Receive returns.
func (s *subscriber) close() {
	s.mu.Lock()
	s.closed = true
	ps := s.ps
	s.mu.Unlock()
	if ps != nil {
		_ = ps.Close()
	}
}

// health pings an idle subscription, and drops a connection that answers
// nothing for deadAfter, whose PING fails, whose SUBSCRIBE is neither
// confirmed nor refused within deadAfter, or that resubscribe reported as
// not delivering. Receive has no deadline of its own (a read timeout in
// the middle of a reply would leave the stream out of step), so closing
// the connection is what unblocks it.
func (s *subscriber) health(ctx context.Context) {
	every := s.bus.cfg.PingInterval
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
			// Events still waiting for the handler mean the subscription
			// delivers and the handler is behind: the own heartbeat is in
			// that backlog. Dropping the connection then would only lose
			// what is in flight on it.
			if len(s.queue) > 0 {
				s.bus.log.Debug("pub/sub resubscribe skipped", zap.Int("backlog", len(s.queue)))
				continue
			}
			if ps := s.current(); ps != nil && s.confirmed.Load() && s.kill(ps, errNotDelivering) {
				s.bus.log.Warn("pub/sub connection dropped", zap.String("reason", "own heartbeat not seen"))
			}
			continue
		case <-t.C:
		}
		ps := s.current()
		if ps == nil {
			continue // the reader is backing off
		}
		idle := time.Since(time.Unix(0, s.lastActivity.Load()))
		confirmed := s.confirmed.Load()
		switch {
		case idle >= s.deadAfter:
			reason, cause := "unresponsive", errUnresponsive
			if !confirmed {
				reason, cause = "subscribe not confirmed", errNotConfirmed
			}
			err := fmt.Errorf("%w for %s", cause, idle.Round(time.Millisecond))
			if s.kill(ps, err) {
				s.bus.log.Warn("pub/sub connection dropped", zap.String("reason", reason),
					zap.Duration("idle", idle))
			}
		case confirmed && idle >= every:
			// The PONG arrives through Receive. The deadline keeps a stuck
			// write from holding this loop (and with it the hang detection).
			pctx, cancel := context.WithTimeout(ctx, every)
			err := ps.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil && s.kill(ps, fmt.Errorf("%w: %w", errPingFailed, err)) {
				s.bus.log.Warn("pub/sub connection dropped", zap.String("reason", "ping failed"),
					zap.Error(err))
			}
		}
	}
}

// resubscribe asks for a confirmed subscription to be dropped and made
// again on a fresh connection. It is for a subscription that looks healthy
// (it answers PING) yet does not deliver, which only the own-heartbeat
// check of [Cluster] can see. It never blocks: closing a connection may
// wait for go-redis, so the health goroutine does it.
func (s *subscriber) resubscribe() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}
