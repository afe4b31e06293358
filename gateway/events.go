package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessiongate/sessiongate/pubsub"
)

// publishTimeout bounds how long a request waits for the bus.
const publishTimeout = 2 * time.Second

// deliverLocal sends a message event to the matching local connections.
func (s *Server) deliverLocal(t pubsub.Target, frame []byte) int {
	switch {
	case t.All:
		return s.conns.SendAll(frame)
	case t.UserID != "":
		return s.conns.SendUser(t.UserID, frame)
	case t.Handle != "":
		return s.conns.SendSession(t.Handle, frame)
	}
	return 0
}

// countingPublisher is the bus as the revocation unit sees it: failed
// publishes count in the gateway's publish error metric.
type countingPublisher struct {
	bus  pubsub.Bus
	errs prometheus.Counter
}

func (p countingPublisher) Publish(ctx context.Context, e pubsub.Event) error {
	err := p.bus.Publish(ctx, e)
	if err != nil {
		p.errs.Inc()
	}
	return err
}

// handleEvent is the bus handler: it runs in the bus's single dispatch
// goroutine, so it must not block.
func (s *Server) handleEvent(_ context.Context, e pubsub.Event) {
	s.metrics.events.WithLabelValues(string(e.Kind)).Inc()
	s.admin.tail.publish(e)
	switch e.Kind {
	case pubsub.KindSessionRevoked, pubsub.KindUserRevoked:
		// The session cache forgets first: once the revocation unit
		// tombstones the handle, no handshake may find it cached.
		switch {
		case e.Kind == pubsub.KindSessionRevoked:
			s.sessions.Invalidate(e.Handle)
		case len(e.Handles) > 0:
			s.sessions.Invalidate(e.Handles...)
		default:
			s.sessions.Clear() // a user revocation that does not name its sessions
		}
		s.rev.HandleEvent(e)
	case pubsub.KindMessage:
		s.handleMessage(e)
	case pubsub.KindHeartbeat, pubsub.KindDraining:
		s.cluster.Observe(e)
	}
}

type publishRequest struct {
	Target *pubsub.Target  `json:"target"`
	Event  string          `json:"event"`
	Data   json.RawMessage `json:"data"`
}

type publishResponse struct {
	ID             string `json:"id"`
	DeliveredLocal int    `json:"delivered_local"`
	// Stream, Epoch and Offset are the event's position in its history
	// stream; absent with history off.
	Stream string `json:"stream,omitempty"`
	Epoch  string `json:"epoch,omitempty"`
	Offset uint64 `json:"offset,omitempty"`
}

func (req publishRequest) validate() error {
	t := req.Target
	if t == nil {
		return errorf(http.StatusBadRequest, codeBadRequest, `"target" is required: {"user_id":...} | {"handle":...} | {"all":true}`)
	}
	n := 0
	if t.All {
		n++
	}
	if t.UserID != "" {
		n++
		if err := validUserID(t.UserID); err != nil {
			return errorf(http.StatusBadRequest, codeBadRequest, "target."+err.Error())
		}
	}
	if t.Handle != "" {
		n++
	}
	if n != 1 {
		return errorf(http.StatusBadRequest, codeBadRequest, "target must name exactly one of user_id, handle or all")
	}
	if req.Event == "" || len(req.Event) > 128 {
		return errorf(http.StatusBadRequest, codeBadRequest, `"event" is required (1 to 128 characters)`)
	}
	return nil
}
