package revocation

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/internal/logfield"

	"github.com/sessiongate/sessiongate/connmgr"
	"github.com/sessiongate/sessiongate/pubsub"
	"github.com/sessiongate/sessiongate/session"
)

// Result says how far a revocation got.
type Result struct {
	// Pending is true when the store or the bus did not confirm the
	// revocation: the local connections are closed and the revocation is
	// queued and retried until both confirm it (see the package doc).
	Pending bool
	// Existed (session revocations) reports whether the store had the
	// session. Meaningful only when not Pending.
	Existed bool
	// Sessions (user revocations) is how many sessions the store
	// destroyed. Meaningful only when not Pending.
	Sessions int
	// ClosedLocal is how many local connections closed at once.
	ClosedLocal int
}

// RevokeSession revokes the session named by handle, for reason (logged).
//
// It tombstones the handle, closes the local connections with 4500 at once
// (this instance never waits to hear its own event) and, concurrently,
// deletes the session and publishes the revocation, so remote connections
// close one pub/sub hop after the call, not after the store's round trips.
// The store and bus calls outlive ctx's cancellation (a client hanging up
// on its logout must not leave the session valid), bounded by the timeouts.
//
// If either fails, the revocation is queued: the tombstone here holds until
// the store confirms the delete, and the delete and the event are retried
// until both succeed. A session the store reports absent is not queued.
func (r *Revoker) RevokeSession(ctx context.Context, handle, reason string) Result {
	r.tomb.hold(handle)
	closed := r.conns.CloseSession(handle, connmgr.CodeRevoked)
	// The delete runs beside the publish, which is sent first: the remote
	// connections' close waits on the event, not on the store.
	var existed bool
	var derr error
	deleted := make(chan struct{})
	go func() {
		defer close(deleted)
		existed, derr = r.destroy(ctx, handle)
	}()
	perr := r.publish(ctx, r.sessionEvent(handle))
	<-deleted
	r.m.revocations.WithLabelValues("session").Inc()

	res := Result{Existed: existed, ClosedLocal: closed}
	if derr == nil && (perr == nil || !existed) {
		// Confirmed. A session the store did not have needs no event:
		// connections of a session that is gone are the sweep's.
		r.tomb.release(handle, r.now())
	} else {
		res = Result{Pending: true, ClosedLocal: closed}
		p := &pendingRevocation{kind: kindSession, id: handle, reason: reason, destroyed: derr == nil}
		r.enqueue(p, errors.Join(derr, perr)) // takes over the hold
	}
	r.log.Info("session revoked", logfield.Handle(handle), zap.String("reason", reason),
		zap.String("status", res.status()), zap.Bool("existed", res.Existed), zap.Int("closed_local", closed))
	return res
}

// RevokeUser revokes every session of userID, for reason (logged).
//
// It destroys the sessions in the user's index, then tombstones and closes
// exactly those, here and (through user.revoked events that carry their
// handles, chunked) on every instance: a session created concurrently is
// not in the destroyed set and stays connected.
//
// If the store fails, it fails closed: every local connection of the user
// closes with 4500 and the revocation is queued; once the store answers,
// the retry destroys every session the user has then. If only the events
// fail, they are queued. It returns an error, and does nothing, for a user
// id the store refuses ([session.ErrInvalidUser]).
func (r *Revoker) RevokeUser(ctx context.Context, userID, reason string) (Result, error) {
	handles, err := r.destroyUser(ctx, userID)
	if errors.Is(err, session.ErrInvalidUser) {
		return Result{}, err
	}
	r.m.revocations.WithLabelValues("user").Inc()
	var res Result
	if err != nil {
		// Queued before the close, so a handshake of this user that
		// registers after the close finds it pending (UserPending) in
		// every ordering.
		r.enqueue(&pendingRevocation{kind: kindUser, id: userID, reason: reason}, err)
		res = Result{Pending: true, ClosedLocal: r.conns.CloseUser(userID, connmgr.CodeRevoked)}
	} else {
		res = Result{Sessions: len(handles), ClosedLocal: r.closeHandles(handles)}
		p := &pendingRevocation{kind: kindUser, id: userID, reason: reason, destroyed: true, handles: handles}
		if err := r.publishUser(ctx, p); err != nil {
			res.Pending = true
			r.enqueue(p, err)
		}
	}
	r.log.Info("user revoked", zap.String("user_id", userID), zap.String("reason", reason),
		zap.String("status", res.status()), zap.Int("sessions", res.Sessions), zap.Int("closed_local", res.ClosedLocal))
	return res, nil
}

func (res Result) status() string {
	if res.Pending {
		return "pending"
	}
	return "done"
}

// closeHandles tombstones each handle, then closes its local connections.
func (r *Revoker) closeHandles(handles []string) int {
	now := r.now()
	n := 0
	for _, h := range handles {
		r.tomb.add(h, now)
		n += r.conns.CloseSession(h, connmgr.CodeRevoked)
	}
	return n
}

func (r *Revoker) destroy(ctx context.Context, handle string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.StoreTimeout)
	defer cancel()
	return r.store.Destroy(ctx, handle)
}

func (r *Revoker) destroyUser(ctx context.Context, userID string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.StoreTimeout)
	defer cancel()
	return r.store.DestroyUser(ctx, userID)
}

func (r *Revoker) sessionEvent(handle string) pubsub.Event {
	return pubsub.Event{Kind: pubsub.KindSessionRevoked, Handle: handle}
}

// publish sends e, stamped with this instance as its origin.
func (r *Revoker) publish(ctx context.Context, e pubsub.Event) error {
	e.Origin = r.cfg.InstanceID
	e.Time = r.now()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.PublishTimeout)
	defer cancel()
	return r.bus.Publish(ctx, e)
}

// publishUser publishes p's destroyed handles in chunks of at most
// HandlesPerEvent, from the first chunk not yet published. It records its
// progress in p, so a retry resumes where it stopped.
func (r *Revoker) publishUser(ctx context.Context, p *pendingRevocation) error {
	per := r.cfg.HandlesPerEvent
	for p.published < len(p.handles) {
		end := min(p.published+per, len(p.handles))
		e := pubsub.Event{Kind: pubsub.KindUserRevoked, UserID: p.id, Handles: p.handles[p.published:end]}
		if err := r.publish(ctx, e); err != nil {
			return err
		}
		p.published = end
	}
	return nil
}
