package cluster

import "errors"

// Errors returned by this package.
var (
	// ErrNotFound means a required program (redis-server, haproxy) is not installed.
	ErrNotFound = errors.New("cluster: program not found")
	// ErrNotReady means a process did not become ready within its bound.
	ErrNotReady = errors.New("cluster: not ready in time")
	// ErrExited means a process exited while it was expected to run.
	ErrExited = errors.New("cluster: process exited")
)
