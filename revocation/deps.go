package revocation

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/connmgr"
	"github.com/sessiongate/sessiongate/pubsub"
	"github.com/sessiongate/sessiongate/session"
)

// Destroyer deletes sessions from the store; session.Store satisfies it.
type Destroyer interface {
	// Destroy deletes one session and reports whether it existed.
	Destroy(ctx context.Context, handle string) (bool, error)
	// DestroyUser deletes every session in a user's index and returns the
	// handles of those that existed (sessions created meanwhile survive).
	DestroyUser(ctx context.Context, userID string) ([]string, error)
}

// Checker tells which sessions still exist, and in which data set;
// session.Store satisfies it.
type Checker interface {
	// Exists reports, per handle, whether its session exists; with touch
	// it also extends their idle TTL.
	Exists(ctx context.Context, handles []string, touch bool) ([]bool, error)
	// Generation names the store's data set; it changes when the data set
	// is lost.
	Generation(ctx context.Context) (string, error)
	// Indexed reports, per ref, whether its user's index holds its handle.
	Indexed(ctx context.Context, refs []session.IndexRef) ([]bool, error)
}

// Store is what a [Revoker] needs of the session store.
type Store interface {
	Destroyer
	Checker
}

// Publisher sends an event to every instance; pubsub.Bus satisfies it.
type Publisher interface {
	Publish(ctx context.Context, e pubsub.Event) error
}

// Conns closes this instance's connections; *connmgr.Manager satisfies it.
// Its methods must not block.
type Conns interface {
	// CloseSession closes the session's local connections with code and
	// returns how many it closed.
	CloseSession(handle string, code connmgr.CloseCode) int
	// CloseUser closes the user's local connections with code and returns
	// how many it closed.
	CloseUser(userID string, code connmgr.CloseCode) int
	// Sessions snapshots the sessions with local connections.
	Sessions() []connmgr.SessionRef
}

// Deps are a [Revoker]'s dependencies. Store, Bus, Conns and Log are
// required.
type Deps struct {
	Store Store
	Bus   Publisher
	Conns Conns
	Log   *zap.Logger
	// Now is the clock for tombstones and close-code decisions. Defaults
	// to time.Now.
	Now func() time.Time
	// Metrics, when not nil, is where the Revoker registers its metrics.
	Metrics prometheus.Registerer
	// Reconciled, when not nil, is called after every successful reconcile
	// pass, in the reconcile goroutine: what must follow the closing of
	// revoked and lost sessions (the gateway's check for missed events,
	// whose code 4010 would otherwise hide a 4500 or 4504) hangs on it.
	Reconciled func()
	// Forget, when not nil, is told of sessions a reconcile pass found
	// gone from the store (handles), and of a store reset (all: every
	// session may be gone), before their connections are closed, so a
	// cache of sessions (the gateway's session cache) drops them before
	// the closed clients can reconnect. Called from the reconcile
	// goroutine; it must not block.
	Forget func(handles []string, all bool)
}
