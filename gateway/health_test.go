package gateway

import (
	"testing"

	"github.com/sessiongate/sessiongate/pubsub"
	"github.com/sessiongate/sessiongate/redisconn"
)

// TestRedisReadiness: readiness follows the live PING, and a degraded
// reason never says "redis ok".
func TestRedisReadiness(t *testing.T) {
	for _, tc := range []struct {
		name       string
		h          redisconn.Health
		wantOK     bool
		wantReason string
	}{
		{"connected, ping ok", redisconn.Health{State: redisconn.StateConnected, Status: redisconn.StatusOK}, true, ""},
		{"reconnecting, live ping already ok", redisconn.Health{State: redisconn.StateReconnecting, Status: redisconn.StatusOK}, true, ""},
		{"connected, live ping failed", redisconn.Health{State: redisconn.StateConnected, Status: redisconn.StatusError}, false, "redis error"},
		{"reconnecting", redisconn.Health{State: redisconn.StateReconnecting, Status: "reconnecting"}, false, "redis reconnecting"},
		{"down", redisconn.Health{State: redisconn.StateDown, Status: "down"}, false, "redis down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason, ok := redisReadiness(tc.h)
			if ok != tc.wantOK || reason != tc.wantReason {
				t.Fatalf("redisReadiness = (%q, %v), want (%q, %v)", reason, ok, tc.wantReason, tc.wantOK)
			}
		})
	}
}

// On a sharded bus /readyz names the shard channels that are not live
// instead of the classic heartbeat.
func TestShardsNotLive(t *testing.T) {
	got := shardsNotLive([]pubsub.ShardStat{{Shard: 0, Live: true}, {Shard: 1}, {Shard: 2, Live: true}, {Shard: 3}})
	if len(got) != 2 || got[0] != 1 || got[1] != 3 {
		t.Fatalf("shardsNotLive = %v, want [1 3]", got)
	}
	if got := shardsNotLive([]pubsub.ShardStat{{Shard: 0, Live: true}}); got != nil {
		t.Fatalf("all live: %v, want none", got)
	}
}
