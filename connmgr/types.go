package connmgr

import (
	"time"
)

// Info describes an authenticated connection. The gateway fills it before
// [Manager.Serve]; the manager keeps it unchanged for the connection's life.
type Info struct {
	// ID is the connection id sent in the welcome frame. Empty means the
	// manager generates a short random one.
	ID string
	// UserID is the authenticated user; empty means the connection is not
	// indexed by user.
	UserID string
	// Handle is the session's public handle (never the session id); empty
	// means the connection is not indexed by session.
	Handle string
	// Remote is the client address, for logs only.
	Remote string
	// ExpiresAt is the session's absolute expiry; the connection is closed
	// with [CodeExpired] once it passes. Zero means no expiry.
	ExpiresAt time.Time
}

// Hooks are optional callbacks for metrics and logging. They are called
// synchronously from connection goroutines, concurrently with each other, and
// must be cheap and never block. The *Info they receive is owned by the
// manager: read it during the call, do not keep or modify it.
type Hooks struct {
	// OnOpen is called once a connection is registered, before its welcome.
	OnOpen func(info *Info)
	// OnClose is called exactly once per opened connection, after its close
	// handshake, with the code and how long the connection lived.
	OnClose func(info *Info, code CloseCode, dur time.Duration)
	// OnMessage is called from the connection's reader for each client
	// "message" frame within the inbound rate, one at a time per
	// connection (the next frame is read once it returns); msg is owned by
	// the callee. A non-nil frame it returns (an ack or an error) is
	// queued on that connection.
	OnMessage func(info *Info, msg ClientMessage) []byte
	// OnRateLimited is called for each client message refused by the
	// inbound rate limit (the client gets a rate_limited error).
	OnRateLimited func(info *Info)
	// OnSent is called with the number of frames written.
	OnSent func(n int)
	// OnDropped is called with the number of frames dropped because a queue
	// was full or its connection was closing.
	OnDropped func(n int)
	// OnQueueHigh is called each time a connection's outbound queue grows
	// to half of Config.SendQueue (rounded down, at least 1): the client is
	// falling behind; at the full bound it is closed with
	// [CodeSlowConsumer]. It is called again only after the queue went
	// below that mark and came back.
	OnQueueHigh func()
}

// SessionRef describes one session with connections on this instance.
type SessionRef struct {
	// Handle is the session's public handle.
	Handle string
	// ExpiresAt is the session expiry as given in [Info] (the latest among
	// its connections).
	ExpiresAt time.Time
	// Conns is the number of local connections of the session.
	Conns int
}

// Stats counts what the manager holds locally.
type Stats struct {
	// Connections is the number of registered connections.
	Connections int
	// Sessions is the number of distinct session handles.
	Sessions int
	// Users is the number of distinct user ids.
	Users int
}
