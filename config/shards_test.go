package config

import "testing"

// PUBSUB_SHARDS counts only on a Redis Cluster: several REDIS_ADDRS
// without a Sentinel master name. A single Redis and Sentinel keep
// classic PUBLISH whatever it says.
func TestShardedPubsub(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want int
	}{
		{name: "memory", env: map[string]string{}, want: 0},
		{name: "single redis", env: map[string]string{"USE_REDIS_SESSIONS": "true"}, want: 0},
		{name: "one address", env: map[string]string{"USE_REDIS_SESSIONS": "true", "REDIS_ADDRS": "a:1"}, want: 0},
		{name: "cluster, default", env: map[string]string{"USE_REDIS_SESSIONS": "true", "REDIS_ADDRS": "a:1,b:2"}, want: 16},
		{name: "cluster, 64", env: map[string]string{"USE_REDIS_SESSIONS": "true", "REDIS_ADDRS": "a:1,b:2", "PUBSUB_SHARDS": "64"}, want: 64},
		{name: "cluster, classic", env: map[string]string{"USE_REDIS_SESSIONS": "true", "REDIS_ADDRS": "a:1,b:2", "PUBSUB_SHARDS": "0"}, want: 0},
		{name: "sentinel", env: map[string]string{"USE_REDIS_SESSIONS": "true", "REDIS_ADDRS": "a:1,b:2", "REDIS_MASTER_NAME": "m"}, want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := mustLoad(t, nil, tc.env).ShardedPubsub(); got != tc.want {
				t.Fatalf("ShardedPubsub() = %d, want %d", got, tc.want)
			}
		})
	}
}
