package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sessiongate/sessiongate/pubsub"
)

// The live event tail: every bus event this instance sees, streamed to the
// admin console as server-sent events. It shows what an operator needs to
// follow traffic (kind, origin, target, event name, stream position),
// never a payload and never a session id: sessions appear by handle only.

const (
	// maxTailSubscribers bounds the tails open at once on one instance.
	maxTailSubscribers = 8
	// tailBuffer is how many events a slow tail may lag before events are
	// dropped for it (and it is told how many).
	tailBuffer = 256
	// tailKeepAlive is the period of the comment that keeps an idle
	// stream open through proxies.
	tailKeepAlive = 15 * time.Second
	// tailWriteTimeout bounds one write to a tail.
	tailWriteTimeout = 10 * time.Second
)

// tailEvent is one line of the tail.
type tailEvent struct {
	Time   string         `json:"time"`
	Kind   string         `json:"kind"`
	Origin string         `json:"origin"`
	ID     string         `json:"id,omitempty"`
	Event  string         `json:"event,omitempty"`
	Target *pubsub.Target `json:"target,omitempty"`
	Stream string         `json:"stream,omitempty"`
	Epoch  string         `json:"epoch,omitempty"`
	Offset uint64         `json:"offset,omitempty"`
	// Handle is a revoked session's handle; UserID a revoked user;
	// Handles how many sessions a user revocation named.
	Handle  string `json:"handle,omitempty"`
	UserID  string `json:"user_id,omitempty"`
	Handles int    `json:"handles,omitempty"`
	// Instance is a heartbeat's or draining notice's instance summary.
	Instance *tailInstance `json:"instance,omitempty"`
}

type tailInstance struct {
	ID          string `json:"id"`
	Connections int    `json:"connections"`
	Draining    bool   `json:"draining"`
}

func toTailEvent(e pubsub.Event) tailEvent {
	t := tailEvent{
		Time: e.Time.UTC().Format(time.RFC3339Nano), Kind: string(e.Kind), Origin: e.Origin, ID: e.ID,
		Event: e.Name, Target: e.Target, Stream: e.Stream, Epoch: e.Epoch, Offset: e.Offset,
		Handle: e.Handle, UserID: e.UserID, Handles: len(e.Handles),
	}
	if e.Instance != nil {
		t.Instance = &tailInstance{ID: e.Instance.ID, Connections: e.Instance.Connections, Draining: e.Instance.Draining}
	}
	return t
}

// tailHub fans bus events out to the open tails. publish runs in the bus's
// dispatch goroutine and never blocks: a tail whose buffer is full misses
// the event and counts it. Safe for concurrent use.
type tailHub struct {
	n    atomic.Int32
	mu   sync.Mutex
	subs map[*tailSub]struct{}
}

type tailSub struct {
	ch      chan []byte
	dropped atomic.Int64
}

func newTailHub() *tailHub { return &tailHub{subs: map[*tailSub]struct{}{}} }

// publish hands e to every tail.
func (h *tailHub) publish(e pubsub.Event) {
	if h.n.Load() == 0 {
		return
	}
	b, err := json.Marshal(toTailEvent(e))
	if err != nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for sub := range h.subs {
		select {
		case sub.ch <- b:
		default:
			sub.dropped.Add(1)
		}
	}
}

// subscribe opens a tail, or returns nil when maxTailSubscribers are open.
func (h *tailHub) subscribe() *tailSub {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subs) >= maxTailSubscribers {
		return nil
	}
	sub := &tailSub{ch: make(chan []byte, tailBuffer)}
	h.subs[sub] = struct{}{}
	h.n.Store(int32(len(h.subs)))
	return sub
}

func (h *tailHub) unsubscribe(sub *tailSub) {
	h.mu.Lock()
	delete(h.subs, sub)
	h.n.Store(int32(len(h.subs)))
	h.mu.Unlock()
}

// adminTail streams the bus events this instance sees as server-sent
// events ("data: {json}"), plus "event: dropped" with the count when the
// console fell behind. It ends when the client goes, or the instance
// shuts down.
func (s *Server) adminTail(c echo.Context) error {
	sub := s.admin.tail.subscribe()
	if sub == nil {
		return errorf(http.StatusServiceUnavailable, codeUnavailable, fmt.Sprintf("too many event tails open on this instance (at most %d)", maxTailSubscribers))
	}
	defer s.admin.tail.unsubscribe(sub)
	rc := http.NewResponseController(c.Response())
	// The server's timeouts bound ordinary requests; a stream bounds each
	// write instead. The read deadline goes too: net/http's background
	// read would otherwise take its expiry for the client leaving and
	// cancel the stream.
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	h := c.Response().Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	c.Response().WriteHeader(http.StatusOK)
	write := func(b []byte) error {
		_ = rc.SetWriteDeadline(time.Now().Add(tailWriteTimeout))
		if _, err := c.Response().Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	if err := write([]byte(": tail of " + s.cfg.InstanceID + "\n\n")); err != nil {
		return nil
	}
	keep := time.NewTicker(tailKeepAlive)
	defer keep.Stop()
	var reported int64
	for {
		select {
		case <-c.Request().Context().Done():
			return nil
		case <-s.baseCtx.Done():
			return nil
		case <-keep.C:
			if write([]byte(": keep-alive\n\n")) != nil {
				return nil
			}
		case b := <-sub.ch:
			msg := make([]byte, 0, len(b)+16)
			if d := sub.dropped.Load(); d != reported {
				msg = fmt.Appendf(msg, "event: dropped\ndata: %d\n\n", d-reported)
				reported = d
			}
			msg = append(append(append(msg, "data: "...), b...), "\n\n"...)
			if write(msg) != nil {
				return nil
			}
		}
	}
}
