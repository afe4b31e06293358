package gateway

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/internal/redistest"
	"github.com/sessiongate/sessiongate/pubsub"
)

// Two gateways on a real 3-master Redis Cluster with PUBSUB_SHARDS: the
// bus is sharded, a user's events published on one instance reach the
// user's connection on the other through the history script's SPUBLISH
// on the user's shard channel, with consecutive positions, revocations
// still close sockets everywhere (classic channel), and /readyz is ok
// once every shard is live.
func TestShardedPubsubOnRedisCluster(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3})
	env := map[string]string{"USE_REDIS_SESSIONS": "true", "REDIS_ADDRS": strings.Join(c.Addrs(), ","),
		"PUBSUB_SHARDS": "8"}
	var gs []*testGateway
	for _, id := range []string{"inst-a", "inst-b"} {
		e := map[string]string{"GATEWAY_INSTANCE_ID": id}
		for k, v := range env {
			e[k] = v
		}
		rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), MaxRetries: 1,
			ContextTimeoutEnabled: true, DialTimeout: time.Second})
		t.Cleanup(func() { rdb.Close() })
		gs = append(gs, startGateway(t, gwOptions{env: e, rdb: rdb}))
	}
	a, b := gs[0], gs[1]
	if _, ok := a.parts.Bus.(*pubsub.ShardedBus); !ok {
		t.Fatalf("bus is %T, want *pubsub.ShardedBus", a.parts.Bus)
	}
	waitFor(t, generous, "both instances ready", func() bool {
		for _, g := range gs {
			res, err := g.client().Get(g.http.URL + "/readyz")
			if err != nil {
				return false
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				return false
			}
		}
		return true
	})

	token, _ := a.createSession("alice")
	onB := b.dialToken(token)
	onB.mustNext("welcome")
	var last uint64
	for i := range 5 {
		if st, body := a.api("POST", "/api/v1/publish", map[string]any{"target": map[string]any{"user_id": "alice"}, "event": "e"}); st != 202 {
			t.Fatalf("publish %d: %d %s", i, st, body)
		}
		ev := onB.mustNext("event")
		if ev.Stream != "user" || (last != 0 && ev.Offset != last+1) {
			t.Fatalf("event %d: %+v after offset %d", i, ev, last)
		}
		last = ev.Offset
	}
	if st, body := a.api("DELETE", "/api/v1/users/alice/sessions", nil); st != 200 {
		t.Fatalf("revoke: %d %s", st, body)
	}
	if code := onB.closeCode(generous); code != 4500 {
		t.Fatalf("close code %d, want 4500", code)
	}
}
