package gateway

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/sessiongate/sessiongate/internal/redistest"
	"github.com/sessiongate/sessiongate/pubsub"
	"github.com/sessiongate/sessiongate/redisconn"
)

// metricsText scrapes g's /metrics.
func metricsText(t *testing.T, g *testGateway) string {
	t.Helper()
	_, body := doJSON(t, g.http.URL, "GET", "/metrics", nil, "")
	return string(body)
}

// hasAll reports whether every line is in the exposition text.
func hasAll(text string, lines ...string) bool {
	for _, l := range lines {
		if !strings.Contains(text, "\n"+l+"\n") {
			return false
		}
	}
	return true
}

// The alert rules' gauges follow the real state: pub/sub live and Redis
// connected while a real redis-server answers, both 0 once it is gone,
// and the pub/sub counters count the loss.
func TestPubSubLiveAndRedisConnectedGauges(t *testing.T) {
	srv := redistest.Start(t)
	rm, err := redisconn.New(redisconn.Config{Addrs: []string{srv.Addr()}, CheckInterval: 100 * time.Millisecond,
		BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond}, zaptest.NewLogger(t).Named("redis"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rm.Close() })
	if err := rm.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, gwOptions{rdb: rm.Client(), redis: rm,
		env: map[string]string{"PUBSUB_HEARTBEAT_INTERVAL": "200ms"}})
	var m string
	waitFor(t, generous, "pub/sub live and Redis connected in /metrics", func() bool {
		m = metricsText(t, g)
		return hasAll(m, "sessiongate_pubsub_live 1", "sessiongate_redis_connected 1")
	})
	srv.Stop()
	waitFor(t, generous, "pub/sub not live and Redis not connected in /metrics", func() bool {
		m = metricsText(t, g)
		return hasAll(m, "sessiongate_pubsub_live 0", "sessiongate_redis_connected 0")
	})
	// The outage is counted, so a flap between two scrapes shows too.
	waitFor(t, generous, "the lost subscription and liveness counted", func() bool {
		return metricValue(t, g, "sessiongate_pubsub_gaps_total", "") >= 1 &&
			metricValue(t, g, "sessiongate_pubsub_liveness_lost_total", "") >= 1
	})
}

// Embedded mode has no Redis gauge; pub/sub (the in-process bus) is live.
func TestOpsGaugesEmbedded(t *testing.T) {
	g := startGateway(t, gwOptions{env: map[string]string{"PUBSUB_HEARTBEAT_INTERVAL": "200ms"}})
	waitFor(t, generous, "pub/sub live in /metrics", func() bool {
		return hasAll(metricsText(t, g), "sessiongate_pubsub_live 1")
	})
	if m := metricsText(t, g); strings.Contains(m, "sessiongate_redis_connected") {
		t.Fatalf("embedded mode exports sessiongate_redis_connected:\n%s", grepLines(m, "sessiongate_redis_connected"))
	}
}

// sessiongate_cluster_instances counts the view by state: a peer that
// stops beating without a drain is gone, one that drained and stopped has
// left; every state is exported, 0 included.
func TestClusterInstancesGauge(t *testing.T) {
	g := startGateway(t, gwOptions{env: map[string]string{"PUBSUB_HEARTBEAT_INTERVAL": "200ms"}})
	waitFor(t, generous, "only this instance, alive", func() bool {
		return hasAll(metricsText(t, g), `sessiongate_cluster_instances{state="alive"} 1`,
			`sessiongate_cluster_instances{state="draining"} 0`, `sessiongate_cluster_instances{state="gone"} 0`,
			`sessiongate_cluster_instances{state="left"} 0`)
	})
	peer := func(kind pubsub.Kind, id string) {
		g.srv.cluster.Observe(pubsub.Event{Kind: kind, Origin: id, Instance: &pubsub.InstanceInfo{ID: id}})
	}
	peer(pubsub.KindHeartbeat, "ghost")
	peer(pubsub.KindDraining, "leaver")
	if m := metricsText(t, g); !hasAll(m, `sessiongate_cluster_instances{state="alive"} 2`, `sessiongate_cluster_instances{state="draining"} 1`) {
		t.Fatalf("after a peer's heartbeat and another's drain:\n%s", grepLines(m, "sessiongate_cluster_instances"))
	}
	// Neither beats again: after 3 missed heartbeats one is gone, the other left.
	waitFor(t, generous, "one gone, one left", func() bool {
		return hasAll(metricsText(t, g), `sessiongate_cluster_instances{state="alive"} 1`,
			`sessiongate_cluster_instances{state="gone"} 1`, `sessiongate_cluster_instances{state="left"} 1`)
	})
}
