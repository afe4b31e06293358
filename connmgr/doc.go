// Package connmgr owns sessiongate's live WebSocket connections and their wire
// protocol.
//
// The gateway authenticates a request and calls [Manager.Upgrade], which
// accepts the WebSocket on small buffers, registers it, writes the welcome
// frame and hands the connection's read side to the manager's poller, so the
// HTTP handler returns at once (see upgrade.go and poller.go). Callers that accept the WebSocket
// themselves hand it to [Manager.Serve] (read loop in the caller's goroutine)
// or [Manager.Start] (read loop in a new goroutine). Everything
// else is driven from outside: fan-out ([Manager.SendSession],
// [Manager.SendUser], [Manager.SendAll]), targeted closes
// ([Manager.CloseSession], [Manager.CloseUser]), heartbeats and session expiry
// ([Manager.Run]) and drain ([Manager.Shutdown]).
//
// Cost model, chosen for many idle connections:
//   - no goroutine per idle upgraded connection: it waits in the manager's
//     epoll poller and a short-lived goroutine handles its input (without
//     epoll, or for Serve and Start, one reader goroutine per connection);
//     there is no writer goroutine and no per-connection timer;
//   - outbound frames go through a bounded per-connection queue; a sender that
//     finds the queue idle starts one short-lived flush goroutine that writes
//     until the queue is empty and exits; a full queue closes the connection
//     with [CodeSlowConsumer] and the sender never blocks;
//   - one loop ([Manager.Run]) walks the sharded registry to send pings, spread
//     over the ping interval, and to close connections whose heartbeat or
//     session expired;
//   - registry locks are held only to take a snapshot; every network write
//     happens after they are released.
//   - connection caps (per instance, user and session) are checked where the
//     registry indexes a connection, under that key's shard lock, and the
//     inbound rate limit is one integer field of the connection: neither
//     adds a lock to the hot path or an object to an idle connection.
//
// Close codes live in codes.go; the JSON frames in protocol.go. connmgr knows
// nothing of HTTP frameworks, session stores or Redis.
package connmgr
