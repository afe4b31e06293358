package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/pubsub"
)

// busWatch is a subscriber of its own, in the load generator (on its core,
// not the servers'), on the channel a revocation's event travels on. It
// records when each revocation's event arrived, so a revocation's latency
// splits in two: from the DELETE to its event on the bus (the revoking
// side: the HTTP request, A's work before its PUBLISH, redis-server) and
// from there to the close frame at the client (the receiving side: B's
// wake-up, its handling and the close frame's write). Both the gateways'
// and the path floor's revocations are watched the same way: one more
// subscriber, the same on both sides.
type busWatch struct {
	rdb     *redis.Client
	sub     *redis.PubSub
	key     func(payload string) (string, bool)
	barrier string        // a channel of its own, see stop
	synced  chan struct{} // the barrier's message arrived
	done    chan struct{}

	mu sync.Mutex
	at map[string]int64 // each key's first arrival, unix nanoseconds
}

// watchBus subscribes to channel on the Redis at addr and records the
// first arrival of each revocation's event: key names the revocation a
// message is the event of (the handle or token revoked), and reports false
// for any other message.
func watchBus(ctx context.Context, addr, channel string, key func(string) (string, bool)) (*busWatch, error) {
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	barrier := "loadgen:buswatch:" + randHex(8)
	sub := rdb.Subscribe(ctx, channel, barrier)
	for range 2 { // the two subscriptions' confirmations
		if _, err := sub.Receive(ctx); err != nil {
			_ = sub.Close()
			_ = rdb.Close()
			return nil, fmt.Errorf("watch %s: %w", channel, err)
		}
	}
	w := &busWatch{rdb: rdb, sub: sub, key: key, barrier: barrier,
		synced: make(chan struct{}, 1), done: make(chan struct{}), at: map[string]int64{}}
	go w.run()
	return w, nil
}

func (w *busWatch) run() {
	defer close(w.done)
	for {
		m, err := w.sub.ReceiveMessage(context.Background())
		if err != nil {
			return // closed
		}
		now := time.Now().UnixNano()
		if m.Channel == w.barrier {
			select {
			case w.synced <- struct{}{}:
			default:
			}
			continue
		}
		if k, ok := w.key(m.Payload); ok {
			w.mu.Lock()
			if _, seen := w.at[k]; !seen {
				w.at[k] = now
			}
			w.mu.Unlock()
		}
	}
}

// stop ends the watch and returns each key's first arrival. It first
// publishes on the watch's own barrier channel and waits (at most 5 s) for
// that message: redis-server writes a subscriber's messages in the order
// it ran the PUBLISHes, so every event published before the call has
// been read, the last revocation's included.
func (w *busWatch) stop() map[string]int64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := w.rdb.Publish(ctx, w.barrier, "sync").Err(); err == nil {
		select {
		case <-w.synced:
		case <-ctx.Done():
		}
	}
	cancel()
	_ = w.sub.Close()
	<-w.done
	_ = w.rdb.Close()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.at
}

// gatewayEventChannel is the gateways' event channel: REDIS_KEY_PREFIX's
// default ("sessiongate:", which the load generator does not change) and
// "events".
const gatewayEventChannel = "sessiongate:events"

// sessionRevokedHandle is the handle a gateways' session.revoked event
// revokes; any other message is no revocation's.
func sessionRevokedHandle(payload string) (string, bool) {
	e, err := pubsub.Decode([]byte(payload))
	if err != nil || e.Kind != pubsub.KindSessionRevoked {
		return "", false
	}
	return e.Handle, true
}

// floorRevokedToken is the token a path floor's revocation message
// revokes: the message is the token.
func floorRevokedToken(payload string) (string, bool) { return payload, true }

// splitAtBus splits timed revocations at the bus. Revocation i of keys[i]
// started at starts[i] and its connection saw the close at ends[i];
// arrivals holds each key's first event on the bus. toBus gets the
// arrival minus the start, busToClose the close minus the arrival
// (negative if the watcher read it after the client saw its close; the
// two clocks are the same, the readers are not). A revocation whose event
// never arrived, or arrived before it started (an earlier revocation's),
// is left out of both. Events are matched by key, not by when the watcher
// read them: a watcher that lags behind on a busy core still gives each
// revocation its own event.
func splitAtBus(starts, ends []int64, keys []string, arrivals map[string]int64) (toBus, busToClose []int64) {
	for i, t0 := range starts {
		at, ok := arrivals[keys[i]]
		if !ok || at < t0 {
			continue
		}
		toBus = append(toBus, at-t0)
		busToClose = append(busToClose, ends[i]-at)
	}
	slices.Sort(toBus)
	slices.Sort(busToClose)
	return toBus, busToClose
}
