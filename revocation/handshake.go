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
// catch every ordering. It reports whether it closed.
func (r *Revoker) CloseIfRevokedMeanwhile(handle string) bool {
	if !r.tomb.has(handle, r.now()) {
		return false
	}
	r.conns.CloseSession(handle, connmgr.CodeRevoked)
	return true
}
