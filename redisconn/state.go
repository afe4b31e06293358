package redisconn

import "time"

// State is the connection state the [Manager] observed last.
type State int

const (
	// StateConnecting is the state before the first successful PING.
	StateConnecting State = iota
	// StateConnected means the last PING succeeded.
	StateConnected
	// StateReconnecting means PINGs fail and the Manager is retrying within
	// its budget (Config.ConnectAttempts), with backoff.
	StateReconnecting
	// StateDown means the budget is exhausted; the Manager keeps probing every
	// Config.BackoffMax and reports recovery when Redis answers again.
	StateDown
)

// String returns "connecting", "connected", "reconnecting" or "down".
func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateReconnecting:
		return "reconnecting"
	case StateDown:
		return "down"
	default:
		return "unknown"
	}
}

// Health statuses reported in [Health].Status besides the state names.
const (
	// StatusOK means the live PING of [Manager.Health] succeeded.
	StatusOK = "ok"
	// StatusError means the live PING failed while the Manager still believed
	// the connection was up (its next check will notice).
	StatusError = "error"
)

// Health is a point-in-time report of the Redis connection, shaped for the
// /readyz JSON body. It holds no password: LastError is redacted.
type Health struct {
	// State is the Manager's observed state.
	State State `json:"-"`
	// Status is "ok" when the live PING succeeded; otherwise the state name
	// ("connecting", "reconnecting", "down") or "error".
	Status string `json:"status"`
	// Latency is the round trip of the live PING (zero when it failed).
	Latency time.Duration `json:"-"`
	// LatencyMS is Latency in milliseconds, for JSON.
	LatencyMS float64 `json:"latency_ms"`
	// LastError is the error of the failed live PING, or the last error the
	// Manager saw while not connected; empty when healthy.
	LastError string `json:"last_error,omitempty"`
	// Since is when the Manager entered State.
	Since time.Time `json:"since"`
}

// OK reports whether the live PING succeeded.
func (h Health) OK() bool { return h.Status == StatusOK }
