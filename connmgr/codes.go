package connmgr

import "strconv"

// CloseCode is a WebSocket close status code used by sessiongate. It is sent in
// the close frame, passed to [Hooks.OnClose] and, through [CloseCode.String],
// used as the close reason and as a metric label.
//
// Ranges: 1000–1015 are RFC 6455 codes; in the private range, 4000–4499 mean
// "transient, reconnect" and 4500–4999 mean "terminal, do not reconnect".
// This file is the one place that defines them.
type CloseCode int

const (
	// CodeNormal: the connection ended normally (usually the client closed it).
	// The client does not reconnect.
	CodeNormal CloseCode = 1000
	// CodeGoingAway: the instance is draining or shutting down. The client
	// reconnects (to another instance).
	CodeGoingAway CloseCode = 1001
	// CodeAbnormal is never sent: it records a connection that ended without a
	// close frame (network loss, peer vanished). The client reconnects.
	CodeAbnormal CloseCode = 1006
	// CodeTooBig: the client sent a message over the read limit. Resending the
	// same message would fail again, so the client does not reconnect.
	CodeTooBig CloseCode = 1009
	// CodeInternal: an unexpected server-side failure. The client reconnects.
	CodeInternal CloseCode = 1011
	// CodeSlowConsumer: the connection's outbound queue overflowed (or a write
	// timed out). The client reconnects.
	CodeSlowConsumer CloseCode = 4000
	// CodeHeartbeatTimeout: no pong or other frame arrived in time. The client
	// reconnects.
	CodeHeartbeatTimeout CloseCode = 4001
	// CodeRateLimited: the client sent messages faster than the inbound rate
	// limit (Config.InboundRate, Config.InboundBurst). The client reconnects,
	// with backoff: a client that floods again is closed again.
	CodeRateLimited CloseCode = 4008
	// CodeConnectionLimit: a connection cap (per instance, per user or per
	// session) was reached at registration. Handshakes over a cap are
	// refused before the upgrade (HTTP 429 or 503); this code closes the
	// rare connection that passed that check and lost a race for the last
	// slot. The client reconnects with backoff: a slot frees when another
	// connection closes, or another instance has room.
	CodeConnectionLimit CloseCode = 4009
	// CodeEventsMissed: this instance may have missed events of the
	// connection's history streams (its pub/sub subscription was cut, or
	// an event came after a hole in the stream's offsets), so delivering
	// on would hide a gap. The client reconnects at once and resumes from
	// its last position: the history replays what it missed.
	CodeEventsMissed CloseCode = 4010
	// CodeRevoked: the session was revoked (logout, admin, user revocation).
	// Terminal.
	CodeRevoked CloseCode = 4500
	// CodeExpired: the session reached its expiry. Terminal: the client must
	// log in again.
	CodeExpired CloseCode = 4501
	// CodeUnauthorized: the connection is no longer authorized. Terminal.
	CodeUnauthorized CloseCode = 4502
	// CodeProtocolError: the client broke the protocol (malformed JSON,
	// unknown type, binary frame). Terminal: a buggy client must not loop.
	CodeProtocolError CloseCode = 4503
	// CodeSessionLost: the session store lost its data set (a Redis restart
	// without persistence, FLUSHALL), and this session with it. Nobody
	// revoked it, but it is gone. Terminal: the client must log in again.
	CodeSessionLost CloseCode = 4504
)

// Reconnect reports whether a client that receives c should reconnect.
// Codes not listed above follow the ranges: 4500–4999 are terminal, the rest
// reconnect.
func (c CloseCode) Reconnect() bool {
	switch c {
	case CodeNormal, CodeTooBig, CodeRevoked, CodeExpired, CodeUnauthorized, CodeProtocolError, CodeSessionLost:
		return false
	case CodeGoingAway, CodeAbnormal, CodeInternal, CodeSlowConsumer, CodeHeartbeatTimeout,
		CodeRateLimited, CodeConnectionLimit, CodeEventsMissed:
		return true
	}
	return c < 4500 || c > 4999
}

// String returns the short snake_case name of c ("revoked", "slow_consumer"),
// used as the close reason and as a metric label. Codes not defined here map
// to "unknown" so labels stay bounded whatever a peer sends.
func (c CloseCode) String() string {
	switch c {
	case CodeNormal:
		return "normal"
	case CodeGoingAway:
		return "going_away"
	case CodeAbnormal:
		return "abnormal"
	case CodeTooBig:
		return "too_big"
	case CodeInternal:
		return "internal"
	case CodeSlowConsumer:
		return "slow_consumer"
	case CodeHeartbeatTimeout:
		return "heartbeat_timeout"
	case CodeRateLimited:
		return "rate_limited"
	case CodeConnectionLimit:
		return "connection_limit"
	case CodeEventsMissed:
		return "events_missed"
	case CodeRevoked:
		return "revoked"
	case CodeExpired:
		return "expired"
	case CodeUnauthorized:
		return "unauthorized"
	case CodeProtocolError:
		return "protocol_error"
	case CodeSessionLost:
		return "session_lost"
	}
	return "unknown"
}

// GoString makes %#v print the numeric code next to the name.
func (c CloseCode) GoString() string {
	return "connmgr.CloseCode(" + strconv.Itoa(int(c)) + " " + c.String() + ")"
}

// sendable reports whether c may appear in a close frame (RFC 6455 §7.4).
func (c CloseCode) sendable() bool {
	switch {
	case c == 1004 || c == 1005 || c == CodeAbnormal || c == 1015:
		return false
	case c >= 1000 && c <= 1014:
		return true
	case c >= 3000 && c <= 4999:
		return true
	}
	return false
}
