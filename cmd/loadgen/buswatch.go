package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// busWatch is a subscriber of its own, in the load generator (on its core,
// not the servers'), on the channel a revocation's event travels on. It
// records when each matching message arrived, so a revocation's latency
// splits in two: from the DELETE to its event on the bus (the revoking
// side: the HTTP request, A's work before its PUBLISH, redis-server) and
// from there to the close frame at the client (the receiving side: B's
// wake-up, its handling and the close frame's write). Both the gateways'
// and the path floor's revocations are watched the same way: one more
// subscriber, the same on both sides.
type busWatch struct {
	rdb     *redis.Client
	sub     *redis.PubSub
	match   func(payload string) bool
	barrier string        // a channel of its own, see stop
	synced  chan struct{} // the barrier's message arrived
	done    chan struct{}

	mu sync.Mutex
	at []int64 // unix nanoseconds, in arrival order
}

// watchBus subscribes to channel on the Redis at addr and records the
// arrival of each message match accepts (nil: every message).
func watchBus(ctx context.Context, addr, channel string, match func(string) bool) (*busWatch, error) {
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
	w := &busWatch{rdb: rdb, sub: sub, match: match, barrier: barrier,
		synced: make(chan struct{}, 1), done: make(chan struct{})}
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
		if w.match == nil || w.match(m.Payload) {
			w.mu.Lock()
			w.at = append(w.at, now)
			w.mu.Unlock()
		}
	}
}

// stop ends the watch and returns the arrivals, in order. It first
// publishes on the watch's own barrier channel and waits (at most 5 s) for
// that message: redis-server writes a subscriber's messages in the order
// it ran the PUBLISHes, so every event published before the call has
// been read, the last revocation's included.
func (w *busWatch) stop() []int64 {
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

// isSessionRevoked matches the gateways' session.revoked events.
func isSessionRevoked(payload string) bool {
	return strings.Contains(payload, `"kind":"session.revoked"`)
}

// splitAtBus splits timed revocations at the bus. Revocation i started at
// starts[i] (in order, one at a time) and its connection saw the close at
// ends[i]; arrivals are the watched messages' arrival times. The first
// arrival in [starts[i], starts[i+1]) is revocation i's event: toBus gets
// its arrival minus the start, busToClose the close minus its arrival
// (negative if the watcher read it after the client saw its close; the
// two clocks are the same, the readers are not). A revocation with no
// arrival in its window is left out of both.
func splitAtBus(starts, ends, arrivals []int64) (toBus, busToClose []int64) {
	j := 0
	for i, t0 := range starts {
		for j < len(arrivals) && arrivals[j] < t0 {
			j++
		}
		if j == len(arrivals) {
			break
		}
		if i+1 < len(starts) && arrivals[j] >= starts[i+1] {
			continue
		}
		toBus = append(toBus, arrivals[j]-t0)
		busToClose = append(busToClose, ends[i]-arrivals[j])
		j++
	}
	slices.Sort(toBus)
	slices.Sort(busToClose)
	return toBus, busToClose
}
