// Package revocation keeps sessiongate's core promise: no revoked session
// stays connected, on any instance, whatever happens to pub/sub or Redis.
//
// A [Revoker] revokes sessions and users (store delete, local close, event
// to the other instances), applies the revocation events other instances
// publish, remembers recently revoked handles (tombstones) so a handshake
// that races a revocation is refused, queues and retries revocations that
// the store or the bus could not confirm, and reconciles: it checks every
// session this instance holds connections for against the store and closes
// what is gone, telling a revoked session (4500) from an expired one (4501)
// and from one lost with the whole data set (4504). Each pass also revokes
// again a revoked session a store failover gave back, and revokes a login
// made here whose user-index entry a failover lost (revoking its user
// could not find it): see [Revoker.Created].
//
// It knows nothing of HTTP: the gateway calls it from its handlers, its bus
// handler and its WebSocket handshake. Its dependencies are small
// interfaces ([Store], [Publisher], [Conns]) that session.Store,
// pubsub.Bus and *connmgr.Manager satisfy.
package revocation
