package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/connmgr"
	"github.com/sessiongate/sessiongate/pubsub"
)

// publishTimeout bounds how long a request waits for the bus.
const publishTimeout = 2 * time.Second

// storeTimeout bounds a revocation's store write, which outlives its request.
const storeTimeout = 5 * time.Second

// revokeSession destroys a session, closes its local connections at once and
// tells every other instance. The local close never waits for the bus (this
// instance must not depend on hearing its own event), and the event does not
// wait for the store: it is published alongside the delete, so remote
// connections close one pub/sub hop after the request, not after three Redis
// round trips. Every instance tombstones the handle, so a reconnect that
// races the delete is refused anyway.
func (s *Server) revokeSession(ctx context.Context, handle, reason string) (bool, error) {
	s.tomb.add(handle, s.now())
	closed := s.conns.CloseSession(handle, connmgr.CodeRevoked)
	published := make(chan struct{})
	go func() {
		defer close(published)
		s.publish(ctx, pubsub.Event{Kind: pubsub.KindSessionRevoked, Handle: handle})
	}()
	// The delete must land even if the caller goes away mid-request: the
	// sockets are already closed and the tombstone will not last forever.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	existed, err := s.d.Store.Destroy(dctx, handle)
	cancel()
	<-published
	if err != nil {
		return false, s.storeError("destroy session", err)
	}
	s.metrics.revocations.WithLabelValues("session").Inc()
	s.log.Info("session revoked", zap.String("handle", shortHandle(handle)), zap.String("reason", reason),
		zap.Bool("existed", existed), zap.Int("closed_local", closed))
	return existed, nil
}

// revokeUser destroys every session of a user, here and everywhere.
func (s *Server) revokeUser(ctx context.Context, userID, reason string) (int, error) {
	now := s.now()
	s.tomb.addUser(userID, now)
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	handles, err := s.d.Store.DestroyUser(dctx, userID)
	cancel()
	if err != nil {
		return 0, s.storeError("destroy user sessions", err)
	}
	for _, h := range handles {
		s.tomb.add(h, now)
	}
	closed := s.conns.CloseUser(userID, connmgr.CodeRevoked)
	s.metrics.revocations.WithLabelValues("user").Inc()
	s.publish(ctx, pubsub.Event{Kind: pubsub.KindUserRevoked, UserID: userID})
	s.log.Info("user revoked", zap.String("user_id", userID), zap.String("reason", reason),
		zap.Int("sessions", len(handles)), zap.Int("closed_local", closed))
	return len(handles), nil
}

// publish sends an event to the other instances. A failure is logged, not
// returned: the store change already happened, and the reconciler closes
// what pub/sub did not reach within one sweep.
func (s *Server) publish(ctx context.Context, e pubsub.Event) bool {
	e.Origin = s.cfg.InstanceID
	e.Time = s.now()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishTimeout)
	defer cancel()
	if err := s.d.Bus.Publish(ctx, e); err != nil {
		s.metrics.publishErrors.Inc()
		s.log.Error("event publish failed; the reconciler will catch up", zap.String("kind", string(e.Kind)), zap.Error(err))
		s.requestReconcile("publish failed")
		return false
	}
	return true
}

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

// handleEvent is the bus handler: it runs in the bus's single dispatch
// goroutine, so it must not block.
func (s *Server) handleEvent(_ context.Context, e pubsub.Event) {
	s.metrics.events.WithLabelValues(string(e.Kind)).Inc()
	self := e.Origin == s.cfg.InstanceID
	switch e.Kind {
	case pubsub.KindSessionRevoked:
		if !self {
			s.tomb.add(e.Handle, s.now())
			if n := s.conns.CloseSession(e.Handle, connmgr.CodeRevoked); n > 0 {
				s.log.Info("session revoked by peer", zap.String("handle", shortHandle(e.Handle)),
					zap.String("origin", e.Origin), zap.Int("closed_local", n))
			}
		}
	case pubsub.KindUserRevoked:
		if !self {
			s.tomb.addUser(e.UserID, s.now())
			if n := s.conns.CloseUser(e.UserID, connmgr.CodeRevoked); n > 0 {
				s.log.Info("user revoked by peer", zap.String("user_id", e.UserID),
					zap.String("origin", e.Origin), zap.Int("closed_local", n))
			}
		}
	case pubsub.KindMessage:
		if !self && e.Target != nil {
			s.deliverLocal(*e.Target, connmgr.EncodeEvent(e.ID, e.Name, e.Data))
		}
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
