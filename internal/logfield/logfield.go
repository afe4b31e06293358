// Package logfield builds the zap fields that more than one package logs, so
// each is spelled and shortened the same way everywhere (docs/LOGS.md).
package logfield

import "go.uber.org/zap"

// handleLen is how much of a session handle a log line shows: enough to
// correlate lines and find the session with the API, short enough that
// lines stay readable. A handle is public (an HMAC of the session id), so
// this is for readability, not secrecy.
const handleLen = 12

// ShortHandle is the form of a session handle that logs show.
func ShortHandle(h string) string {
	if len(h) > handleLen {
		return h[:handleLen]
	}
	return h
}

// Handle is the "handle" field: a session handle, shortened.
func Handle(h string) zap.Field { return zap.String("handle", ShortHandle(h)) }
