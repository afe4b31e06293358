package revocation

import "github.com/sessiongate/sessiongate/connmgr"

// Revoked reports whether handle was revoked recently (it is tombstoned):
// a handshake refuses it without asking the store, which may not have
// applied the delete yet. Cheap: a read lock and a map lookup.
func (r *Revoker) Revoked(handle string) bool {
	return r.tomb.has(handle, r.now())
}

// CloseIfRevokedMeanwhile closes the local connections of a session whose
// handshake just registered a connection, if the session was revoked while
// the handshake ran: a revocation (local or by event) that landed between
// the store read and the registration found nothing to close. Every
// revocation path tombstones each handle before it closes, and the
// handshake registers before it calls this, so between them the two checks
// catch every ordering. A user revocation still waiting for the store
// (UserPending) closes it too. It reports whether it closed.
func (r *Revoker) CloseIfRevokedMeanwhile(handle, userID string) bool {
	if !r.tomb.has(handle, r.now()) && !r.UserPending(userID) {
		return false
	}
	r.conns.CloseSession(handle, connmgr.CodeRevoked)
	return true
}

// UserPending reports whether a revocation of every session of userID is
// queued and the store has not confirmed its delete yet: the user's
// sessions may still read as valid, so a handshake must refuse them (the
// retry will destroy whatever sessions the user has when it runs, new ones
// included). It runs on every handshake: with nothing queued it is one
// atomic load; otherwise a mutex and a map lookup.
func (r *Revoker) UserPending(userID string) bool {
	if r.queued.Load() == 0 {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.pending[string(kindUser)+":"+userID]
	return ok && !p.destroyed
}
