package connmgr

import "testing"

func TestCloseCodes(t *testing.T) {
	tests := []struct {
		name      string
		code      CloseCode
		value     int
		reconnect bool
		sendable  bool
	}{
		{name: "normal", code: CodeNormal, value: 1000, reconnect: false, sendable: true},
		{name: "going_away", code: CodeGoingAway, value: 1001, reconnect: true, sendable: true},
		{name: "abnormal", code: CodeAbnormal, value: 1006, reconnect: true, sendable: false},
		{name: "too_big", code: CodeTooBig, value: 1009, reconnect: false, sendable: true},
		{name: "internal", code: CodeInternal, value: 1011, reconnect: true, sendable: true},
		{name: "slow_consumer", code: CodeSlowConsumer, value: 4000, reconnect: true, sendable: true},
		{name: "heartbeat_timeout", code: CodeHeartbeatTimeout, value: 4001, reconnect: true, sendable: true},
		{name: "rate_limited", code: CodeRateLimited, value: 4008, reconnect: true, sendable: true},
		{name: "connection_limit", code: CodeConnectionLimit, value: 4009, reconnect: true, sendable: true},
		{name: "events_missed", code: CodeEventsMissed, value: 4010, reconnect: true, sendable: true},
		{name: "revoked", code: CodeRevoked, value: 4500, reconnect: false, sendable: true},
		{name: "expired", code: CodeExpired, value: 4501, reconnect: false, sendable: true},
		{name: "unauthorized", code: CodeUnauthorized, value: 4502, reconnect: false, sendable: true},
		{name: "protocol_error", code: CodeProtocolError, value: 4503, reconnect: false, sendable: true},
		{name: "session_lost", code: CodeSessionLost, value: 4504, reconnect: false, sendable: true},
		{name: "unknown", code: 4321, value: 4321, reconnect: true, sendable: true},
		{name: "unknown", code: 4777, value: 4777, reconnect: false, sendable: true},
		{name: "unknown", code: 1005, value: 1005, reconnect: true, sendable: false},
		{name: "unknown", code: 999, value: 999, reconnect: true, sendable: false},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+tt.code.GoString(), func(t *testing.T) {
			if int(tt.code) != tt.value {
				t.Errorf("value = %d, want %d", int(tt.code), tt.value)
			}
			if got := tt.code.String(); got != tt.name {
				t.Errorf("String() = %q, want %q", got, tt.name)
			}
			if got := tt.code.Reconnect(); got != tt.reconnect {
				t.Errorf("Reconnect() = %v, want %v", got, tt.reconnect)
			}
			if got := tt.code.sendable(); got != tt.sendable {
				t.Errorf("sendable() = %v, want %v", got, tt.sendable)
			}
		})
	}
}
