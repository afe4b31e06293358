package revocation

import (
	"time"

	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/internal/logfield"

	"github.com/sessiongate/sessiongate/connmgr"
	"github.com/sessiongate/sessiongate/pubsub"
)

// HandleEvent applies a revocation event another instance published: it
// tombstones the revoked handles and closes their local connections with
// 4500. Its own events (this instance already acted) and other kinds are
// ignored. It never blocks: call it from the bus's dispatch goroutine.
//
// A user.revoked event carries the handles its origin destroyed, and only
// those close: a session of that user created concurrently stays. An event
// without handles (from an older instance) closes every local connection
// of the user, as older instances did.
func (r *Revoker) HandleEvent(e pubsub.Event) {
	if e.Origin == r.cfg.InstanceID {
		return
	}
	switch e.Kind {
	case pubsub.KindSessionRevoked:
		r.tomb.add(e.Handle, r.now())
		if n := r.conns.CloseSession(e.Handle, connmgr.CodeRevoked); n > 0 {
			r.observeCloseLatency(e)
			r.log.Info("session revoked by peer", logfield.Handle(e.Handle),
				zap.String("origin", e.Origin), zap.Int("closed_local", n))
		}
	case pubsub.KindUserRevoked:
		var n int
		if len(e.Handles) == 0 {
			n = r.conns.CloseUser(e.UserID, connmgr.CodeRevoked)
		} else {
			n = r.closeHandles(e.Handles)
		}
		if n > 0 {
			r.observeCloseLatency(e)
			r.log.Info("user revoked by peer", zap.String("user_id", e.UserID), zap.String("origin", e.Origin),
				zap.Int("sessions", len(e.Handles)), zap.Int("closed_local", n))
		}
	}
}

// observeCloseLatency records how long after its publication event closed
// connections here. An event without a time, or stamped in this
// instance's future (clock skew), counts as 0.
func (r *Revoker) observeCloseLatency(e pubsub.Event) {
	d := time.Duration(0)
	if !e.Time.IsZero() {
		d = max(r.now().Sub(e.Time), 0)
	}
	r.m.closeLatency.Observe(d.Seconds())
}
