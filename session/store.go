package session

import (
	"context"
	"encoding/json"
)

// Store keeps sessions by handle. Implementations are safe for concurrent
// use, and every method honours ctx. Expected absence is a value (ok=false),
// not an error.
//
// Both implementations ([RedisStore], [MemoryStore]) pass one contract test
// suite: a session lives until its idle TTL lapses without activity, or its
// absolute lifetime ends, or it is destroyed, whichever comes first. No
// path that sets or extends an idle TTL (Create, Load, Update, Exists)
// sets it past the absolute expiry, so a session never lives in the store,
// Redis included, past its lifetime.
type Store interface {
	// Create mints a new session for userID with data (a JSON object, or
	// empty) and returns its token (the cookie value; the caller hands it
	// to the client and must not log it) and the session. It returns
	// ErrInvalidUser or ErrInvalidData for bad input.
	Create(ctx context.Context, userID string, data json.RawMessage) (token string, s Session, err error)
	// Get returns the session named by handle without changing its idle
	// TTL. A session past its absolute expiry is destroyed and reported
	// absent. An invalid handle is reported absent.
	Get(ctx context.Context, handle string) (Session, bool, error)
	// Load is Get for a request that counts as activity: it also extends
	// the idle TTL (clamped to the absolute expiry), at most once per
	// TouchInterval per session and process, in the same single round trip.
	// It never re-encrypts.
	Load(ctx context.Context, handle string) (Session, bool, error)
	// Update re-seals s (data, auth time) in place, keeping its idle TTL
	// (shortened if s.ExpiresAt moved earlier). It returns ErrNotFound if
	// the session is gone: a destroyed session is never written back; and
	// ErrInvalidData if s.ExpiresAt moved later: a lifetime never grows.
	// Update must not change s.UserID; a different user gets a new session
	// (login rotates the id).
	Update(ctx context.Context, s Session) error
	// Destroy deletes the session named by handle and removes it from its
	// user's index. It reports whether the session existed.
	Destroy(ctx context.Context, handle string) (bool, error)
	// DestroyUser destroys every session in userID's index and returns the
	// handles of the sessions that existed.
	DestroyUser(ctx context.Context, userID string) ([]string, error)
	// ListUser returns userID's live sessions, pruning index entries whose
	// session is gone.
	ListUser(ctx context.Context, userID string) ([]Session, error)
	// Exists reports, for each handle, whether its session exists, in one
	// round trip. With touch, it also extends each idle TTL, clamped to the
	// absolute expiry. It decrypts no payload; a session past its absolute
	// expiry is reported absent (RedisStore reads the expiry from the
	// envelope header; for sessions sealed before that header existed it
	// may report one until its key lapses, so callers that hold a
	// [Session] still check [Session.Expired] themselves).
	Exists(ctx context.Context, handles []string, touch bool) ([]bool, error)
	// Indexed reports, for each ref, whether its user's index holds its
	// handle, in one round trip. It reads only the indexes: a ref whose
	// session is gone may still be indexed (until ListUser or DestroyUser
	// prunes it). On Redis Cluster a session and its user's index live in
	// different slots, so a failover can lose a login's index entry while
	// its session key survives elsewhere: such a session would escape
	// DestroyUser. Callers that created sessions check them with Indexed
	// until a failover can no longer undo the write (package revocation).
	Indexed(ctx context.Context, refs []IndexRef) ([]bool, error)
	// Generation returns an id of the data set the sessions live in. It
	// stays the same while the data set does and changes when the data set
	// is lost (a Redis restart without persistence, FLUSHALL): a caller that
	// remembers it can tell "these sessions were revoked" from "every
	// session was lost". The first call may write; later calls only read.
	Generation(ctx context.Context) (string, error)
}

// IndexRef names a session and the user whose index should hold it.
type IndexRef struct {
	UserID string
	Handle string
}
