// Package presence knows which users are online, on which gateway
// instances, with how many connections and sessions.
//
// Each instance counts its own connections in memory ([Tracker.Open],
// [Tracker.Close], called from the connection manager's hooks: no I/O on
// the handshake path) and writes the users that changed to a [Store] every
// flush interval, in one pipelined round trip. Readers ([Tracker.User],
// [Tracker.Page]) read the store and keep only the instances the caller
// says are alive (the cluster view), so an instance that stopped
// heartbeating is never reported, even before its records are purged.
//
// The Redis layout (see [Redis]) is built for Redis Cluster: per instance
// a hash and a sorted set under the instance's hash tag, per user a hash
// under the user's hash tag, and every script touches one key. The memory
// store ([Memory]) serves embedded mode.
//
// A user's transitions between "no connection anywhere" and "at least one
// connection somewhere" are decided atomically on the user's own key, so
// with several instances each transition is reported once, carrying a
// per-user sequence number ([Transition.Seq]); see docs/PRESENCE.md for
// what is guaranteed.
package presence
