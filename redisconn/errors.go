package redisconn

import "errors"

var (
	// ErrUnavailable is returned by [Manager.Connect] when Redis did not answer
	// PING within the connect budget (Config.ConnectAttempts).
	ErrUnavailable = errors.New("redisconn: redis unavailable")

	// ErrInvalidConfig is returned by [New] for a Config that cannot describe a
	// Redis deployment (bad URL, Cluster with a DB other than 0, ...).
	ErrInvalidConfig = errors.New("redisconn: invalid config")

	// ErrUnsupportedVersion is returned by [Manager.Connect] when a Redis
	// server is older than [MinVersion]. Retrying cannot help: it is not
	// subject to the connect budget.
	ErrUnsupportedVersion = errors.New("redisconn: unsupported redis version")

	// ErrClosed is returned by [Manager.Connect] after [Manager.Close].
	ErrClosed = errors.New("redisconn: manager closed")
)
