// Package history keeps a bounded, per-stream history of published events,
// so that a client that reconnects can be sent what it missed.
//
// Every event has a [Position]: the epoch of its stream and its offset in
// it. Offsets start at 1 and increase by one per event within an epoch. An
// epoch is a random id that a stream gets when it is created; when the
// stream's history is lost (its keys expired, Redis was flushed or restarted
// without persistence, an idle in-memory stream was dropped) the next
// append creates the stream again with a new epoch, so an offset is never
// compared across two histories: a position from a lost epoch is simply
// unrecoverable ([Result].Recovered is false), never a silent gap.
//
// There is one stream per user ([UserStream]) and one broadcast stream
// ([Broadcast]). An event for one session goes to its user's stream; the
// reader filters by session.
//
// [Redis] keeps each stream as a Redis Stream plus a small hash (epoch,
// last offset) in the same hash slot, and appends, trims, sets the TTL and
// PUBLISHes the event in one Lua script, so the order of the history and the
// order of live delivery are the same. [Memory] keeps a ring per stream
// with the same semantics, for the embedded mode. Both pass one contract
// test suite. [Coalescing] wraps either so that identical concurrent reads
// (a reconnect storm) cost one read.
//
// The package knows nothing of sessions, WebSockets or the event format:
// an event is opaque bytes. docs/HISTORY.md describes keys and costs.
package history
