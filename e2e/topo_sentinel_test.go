//go:build e2e

package e2e

import (
	"context"
	"testing"

	"github.com/sessiongate/sessiongate/e2e/internal/cluster"
)

// Three gateway processes behind Sentinel (a master, its replica, three
// sentinels), through three faults in a row while logins, publishes and
// revocations flow: SENTINEL FAILOVER, kill -9 of the master (the replica
// promoted), and the killed master back, turned into a replica by the
// sentinels. After each, the checks of topo_harness_test.go.
func TestRedisSentinelFaults(t *testing.T) {
	tc := startCluster(t, cluster.Options{Redis: cluster.RedisSentinelMode, Env: topoEnv(nil)})
	sr := tc.Sentinel
	run := newTopoRun(t, tc)
	defer run.finish()

	run.fault("SENTINEL FAILOVER", func(ctx context.Context) error {
		m, err := sr.Failover(ctx)
		if err == nil {
			t.Logf("SENTINEL FAILOVER: %s is the master", m.Addr())
		}
		return err
	})
	var killed *cluster.Redis
	run.fault("kill -9 the master", func(ctx context.Context) error {
		var m *cluster.Redis
		var err error
		killed, m, err = sr.KillMaster(ctx)
		if err == nil {
			t.Logf("killed %s; the sentinels promoted %s", killed.Addr(), m.Addr())
		}
		return err
	})
	run.fault("old master back as a replica", func(ctx context.Context) error {
		return sr.RestartNode(ctx, killed)
	})
}
