package gateway

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/sessiongate/sessiongate/config"
	"github.com/sessiongate/sessiongate/internal/redistest"
	"github.com/sessiongate/sessiongate/redisconn"
)

// sentinelGateway is an in-process gateway on Sentinel, configured the way
// an operator does it (REDIS_SENTINEL_ADDRS + REDIS_MASTER_NAME), with its
// log lines observed.
type sentinelGateway struct {
	*testGateway
	rm   *redisconn.Manager
	logs *observer.ObservedLogs
}

func startSentinelGateway(t *testing.T, s *redistest.Sentinel, id string) *sentinelGateway {
	t.Helper()
	env := testEnv(map[string]string{
		"GATEWAY_INSTANCE_ID":  id,
		"USE_REDIS_SESSIONS":   "true",
		"REDIS_SENTINEL_ADDRS": strings.Join(s.SentinelAddrs(), ","),
		"REDIS_MASTER_NAME":    s.MasterName(),
		// No periodic sweep during the test: after a failover only the bus
		// (or the reconciliation its resubscribe starts) can close a socket.
		"RECONCILE_INTERVAL": "1h",
	})
	cfg, err := config.Load(nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t).Named(id).Core()))
	rm, err := redisconn.New(cfg.Redis, log.Named("redis"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rm.Close() })
	if err := rm.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, gwOptions{rdb: rm.Client(), redis: rm, log: log, env: env})
	sg := &sentinelGateway{testGateway: g, rm: rm, logs: logs}
	sg.waitReady(t)
	return sg
}

// waitReady waits until /readyz answers 200: Redis answers and pub/sub
// delivers this instance's own heartbeat.
func (g *sentinelGateway) waitReady(t *testing.T) {
	t.Helper()
	waitFor(t, 2*generous, g.cfg.InstanceID+": /readyz ok", func() bool {
		st, _ := doJSON(t, g.http.URL, "GET", "/readyz", nil, "")
		return st == http.StatusOK
	})
}

// waitResubscribed waits for a "pub/sub resubscribed" line logged after
// the first mark lines.
func (g *sentinelGateway) waitResubscribed(t *testing.T, mark int) {
	t.Helper()
	waitFor(t, 2*generous, g.cfg.InstanceID+": pub/sub resubscribed after the failover", func() bool {
		for _, e := range g.logs.All()[mark:] {
			if e.Message == "pub/sub resubscribed" {
				return true
			}
		}
		return false
	})
}

// On Sentinel, with two gateway instances: after kill -9 of the master and
// after SENTINEL FAILOVER, each instance resubscribes, /readyz returns to
// ok, and a revocation made on one instance after the failover closes the
// session's socket on the other with 4500.
func TestRevocationAfterSentinelFailover(t *testing.T) {
	s := redistest.StartSentinel(t, redistest.SentinelOptions{})
	a := startSentinelGateway(t, s, "inst-a")
	b := startSentinelGateway(t, s, "inst-b")
	waitFor(t, generous, "instances see each other", func() bool {
		return len(a.srv.cluster.View()) == 2 && len(b.srv.cluster.View()) == 2
	})

	for i, tc := range []struct {
		name string
		move func() string
	}{
		{"kill -9 of the master", s.KillMaster},
		{"SENTINEL FAILOVER", s.Failover},
	} {
		t.Log(tc.name)
		tok, handle := a.createSession("alice")
		// The session is on every replica before the master moves (WAIT),
		// so the failover cannot lose it: the socket below may only close
		// because of the revocation.
		if n, err := a.rm.Client().Do(context.Background(), "WAIT", 2, 30000).Int(); err != nil || n < 2 {
			t.Fatalf("WAIT for the replicas = %d, %v", n, err)
		}
		w := b.dialToken(tok)
		w.mustNext("welcome")

		markA, markB := len(a.logs.All()), len(b.logs.All())
		old := tc.move()
		s.WaitMaster(old)
		a.waitResubscribed(t, markA)
		b.waitResubscribed(t, markB)
		a.waitReady(t)
		b.waitReady(t)

		if st, body := a.api("DELETE", "/api/v1/sessions/"+handle, nil); st != http.StatusNoContent {
			t.Fatalf("%s: revoke on A after the failover: %d %s", tc.name, st, body)
		}
		if code := w.closeCode(2 * generous); code != 4500 {
			t.Fatalf("%s: close code on B %d, want 4500", tc.name, code)
		}
		if i == 0 {
			// The killed master comes back and is made a replica, so the
			// second failover has two replicas to choose from.
			s.Restart(old)
			s.WaitReplica(old)
		}
	}
	// Readiness held on ok after all of it.
	a.waitReady(t)
	b.waitReady(t)
}
