package connmgr

import "errors"

var (
	// ErrProtocol reports a client frame that breaks the WebSocket protocol of
	// docs/PROTOCOL.md: not a JSON object, an unknown type, a message without data.
	// The connection that sent it is closed with [CodeProtocolError].
	ErrProtocol = errors.New("connmgr: protocol error")

	// ErrDraining is returned by [Manager.Serve] once [Manager.Shutdown] has
	// begun; the connection was not registered and has been closed with
	// [CodeGoingAway].
	ErrDraining = errors.New("connmgr: draining")

	// ErrDuplicateID is returned by [Manager.Serve] when [Info.ID] is already
	// registered; the connection has been closed with [CodeInternal].
	ErrDuplicateID = errors.New("connmgr: duplicate connection id")

	// ErrInstanceFull reports that [Config.MaxConnections] is reached. From
	// [Manager.Admit] it means "refuse before upgrading"; from a
	// registration, the connection has been closed with
	// [CodeConnectionLimit].
	ErrInstanceFull = errors.New("connmgr: instance connection limit reached")

	// ErrUserLimit reports that the user has [Config.MaxConnectionsPerUser]
	// connections here; see [ErrInstanceFull] for what it means where.
	ErrUserLimit = errors.New("connmgr: user connection limit reached")

	// ErrSessionLimit reports that the session has
	// [Config.MaxConnectionsPerSession] connections here; see
	// [ErrInstanceFull] for what it means where.
	ErrSessionLimit = errors.New("connmgr: session connection limit reached")
)
