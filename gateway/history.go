package gateway

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/connmgr"
	"github.com/sessiongate/sessiongate/history"
	"github.com/sessiongate/sessiongate/pubsub"
)

// History is the event history the gateway publishes through: Append
// stores an event and publishes its live envelope on the bus channel in
// one atomic step, so every instance sees a stream's events in offset
// order. *history.Redis and *history.Memory implement it; with history
// off they still publish (with no position).
type History interface {
	Append(ctx context.Context, stream string, data []byte, channel string) (history.Position, error)
	Positions(ctx context.Context, streams ...string) ([]history.Position, error)
	Since(ctx context.Context, stream string, pos history.Position, limit int) (history.Result, error)
}

// Stream names on the wire: the client's own stream and the broadcast.
const (
	wireUser = "user"
	wireAll  = "all"
)

// wireStream is the client's name for a history stream.
func wireStream(stream string) string {
	if stream == history.Broadcast {
		return wireAll
	}
	if strings.HasPrefix(stream, "user:") {
		return wireUser
	}
	return stream
}

// framePosition is e's position as an event frame carries it.
func framePosition(stream string, pos history.Position) connmgr.EventPosition {
	if pos.Offset == 0 {
		return connmgr.EventPosition{}
	}
	return connmgr.EventPosition{Stream: wireStream(stream),
		StreamPosition: connmgr.StreamPosition{Epoch: pos.Epoch, Offset: pos.Offset}}
}

// echoWait bounds how long a publish waits for its event to come back from
// the bus once stored. Past it (the bus is cut or far behind) the publish
// delivers locally itself, possibly out of offset order with events from
// other instances: clients order by offset.
const echoWait = 5 * time.Second

// published is what a message publish did.
type published struct {
	pos       history.Position
	delivered int  // local connections it went to
	ok        bool // stored and published on the bus
}

// publishMessage appends e to stream (which publishes it on the bus in
// the same step) and delivers it to this instance's matching connections.
//
// With history on, the local delivery waits for the event's own echo from
// the bus and happens in the bus handler: that goroutine delivers every
// positioned event, this instance's and the others', in the bus's order,
// which is the stream's offset order, so a connection never sees offsets
// go backwards. When the echo does not come back in time (the bus is cut),
// the request delivers it itself. With history off the instance delivers
// first and ignores its own echo (by Origin), as before histories.
func (s *Server) publishMessage(ctx context.Context, e pubsub.Event, stream string) published {
	e.Origin = s.cfg.InstanceID
	e.Time = s.now()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	payload, err := e.Encode()
	if err != nil { // unreachable for a validated request; keep it local
		s.log.Error("event publish failed", zap.String("kind", string(e.Kind)), zap.Error(err))
		return published{delivered: s.deliverLocal(*e.Target, connmgr.EncodeEvent(e.ID, e.Name, e.Data))}
	}
	if s.cfg.HistoryOff {
		n := s.deliverLocal(*e.Target, connmgr.EncodeEvent(e.ID, e.Name, e.Data))
		_, err := s.d.History.Append(ctx, stream, payload, s.cfg.EventChannel)
		return published{delivered: n, ok: s.appended(e, err)}
	}
	echo := s.echoes.add(e.ID)
	pos, err := s.d.History.Append(ctx, stream, payload, s.cfg.EventChannel)
	if !s.appended(e, err) {
		s.echoes.take(e.ID)
		return published{delivered: s.deliverLocal(*e.Target, connmgr.EncodeEvent(e.ID, e.Name, e.Data))}
	}
	if s.subscribed.Load() {
		// Bounded afresh: a slow Append (a busy pool) must not eat the
		// wait, or the fallback below would deliver out of order.
		t := time.NewTimer(echoWait)
		select {
		case n := <-echo:
			t.Stop()
			return published{pos: pos, delivered: n, ok: true}
		case <-t.C:
		}
	}
	if _, mine := s.echoes.take(e.ID); !mine {
		// The handler claimed it meanwhile and is delivering it now.
		return published{pos: pos, delivered: <-echo, ok: true}
	}
	frame := connmgr.EncodeEventAt(e.ID, e.Name, e.Data, framePosition(stream, pos))
	return published{pos: pos, delivered: s.deliverLocal(*e.Target, frame), ok: true}
}

// appended records an Append's outcome and reports whether it succeeded.
func (s *Server) appended(e pubsub.Event, err error) bool {
	if err != nil {
		s.metrics.historyAppendErrors.Inc()
		s.metrics.publishErrors.Inc()
		s.log.Error("event publish failed", zap.String("kind", string(e.Kind)), zap.Error(err))
		s.requestReconcile("publish failed")
		return false
	}
	s.metrics.historyAppends.Inc()
	return true
}

// handleMessage delivers a message event from the bus to the matching local
// connections. It runs in the bus's dispatch goroutine.
func (s *Server) handleMessage(e pubsub.Event) {
	if e.Target == nil {
		return
	}
	if e.Origin != s.cfg.InstanceID {
		s.deliverLocal(*e.Target, connmgr.EncodeEventAt(e.ID, e.Name, e.Data, framePosition(e.Stream, history.Position{Epoch: e.Epoch, Offset: e.Offset})))
		return
	}
	// Our own event: delivered here only when its publisher waits for it
	// (history on); otherwise the publisher delivered it already.
	if e.Offset == 0 {
		return
	}
	if echo, ok := s.echoes.take(e.ID); ok {
		echo <- s.deliverLocal(*e.Target, connmgr.EncodeEventAt(e.ID, e.Name, e.Data, framePosition(e.Stream, history.Position{Epoch: e.Epoch, Offset: e.Offset})))
	}
}

// echoWaiters are the publishes waiting for their own event to come back
// from the bus, by event id. Whoever takes an entry (the bus handler, or the
// publisher giving up) delivers the event locally; the other does not.
type echoWaiters struct {
	mu sync.Mutex
	m  map[string]chan int
}

// add registers a waiter for id; the channel receives how many local
// connections the handler delivered the event to.
func (w *echoWaiters) add(id string) chan int {
	c := make(chan int, 1)
	w.mu.Lock()
	if w.m == nil {
		w.m = map[string]chan int{}
	}
	w.m[id] = c
	w.mu.Unlock()
	return c
}

// take removes id's waiter and reports whether it was still there.
func (w *echoWaiters) take(id string) (chan int, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	c, ok := w.m[id]
	delete(w.m, id)
	return c, ok
}
