//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"

	"github.com/sessiongate/sessiongate/e2e/internal/cluster"
)

// topoClusterEnv is added to the instances' environment on the Redis
// Cluster. Sharded pub/sub (PUBSUB_SHARDS, on by default on a Cluster) needs
// nothing here; set PUBSUB_SHARDS to run the faults with another count.
var topoClusterEnv = map[string]string{}

// topoPrefix is the instances' REDIS_KEY_PREFIX in the e2e harness.
const topoPrefix = "sge2e:"

// Three gateway processes on a Redis Cluster of three masters with a
// replica each, through four faults in a row while logins, publishes and
// revocations flow: kill -9 of a master (its replica promoted, the old one
// back as a replica), CLUSTER FAILOVER, the migration of two shard channels'
// slots and of a slot holding keys, and SIGSTOP of a master past
// cluster-node-timeout then SIGCONT. The shard channels are named as the
// sharded bus names them (<prefix>events:{n}); their slots come from
// CLUSTER KEYSLOT. After each, the checks of
// topo_harness_test.go.
func TestRedisClusterFaults(t *testing.T) {
	tc := startCluster(t, cluster.Options{Redis: cluster.RedisClusterMode, Env: topoEnv(topoClusterEnv)})
	rc := tc.RedisCluster
	run := newTopoRun(t, tc)
	defer run.finish()
	// The classic channel (broadcasts, revocations, heartbeats) and the
	// first shard channel: the faults aim at the masters serving them.
	classic := topoPrefix + "events"
	shard0 := topoPrefix + "events:{0}"
	shard1 := topoPrefix + "events:{1}"

	run.fault("kill -9 a master", func(ctx context.Context) error {
		m, err := ownerOf(ctx, rc, classic)
		if err != nil {
			return err
		}
		promoted, err := rc.KillMaster(ctx, m)
		if err != nil {
			return err
		}
		t.Logf("killed %s (owner of %s's slot); %s promoted; restarting the killed node", m.Addr(), classic, promoted.Addr())
		return rc.RestartNode(ctx, m)
	})
	run.fault("CLUSTER FAILOVER", func(ctx context.Context) error {
		m, err := ownerOf(ctx, rc, shard0)
		if err != nil {
			return err
		}
		r, err := rc.ReplicaOf(ctx, m)
		if err != nil {
			return err
		}
		t.Logf("CLUSTER FAILOVER on %s, replica of %s (owner of %s's slot)", r.Addr(), m.Addr(), shard0)
		return rc.Failover(ctx, r)
	})
	run.fault("slot migration", func(ctx context.Context) error {
		// Two shard channels' slots, and a slot that holds keys now
		// (sessions, indexes or streams).
		masters, err := rc.Masters(ctx)
		if err != nil {
			return err
		}
		key, err := rc.RandomKey(ctx)
		if err != nil {
			return err
		}
		for _, name := range []string{shard0, shard1, key} {
			slot, err := rc.KeySlot(ctx, name)
			if err != nil {
				return err
			}
			owner, err := rc.SlotOwner(ctx, slot)
			if err != nil {
				return err
			}
			to := masters[0]
			for _, m := range masters {
				if m != owner {
					to = m
					break
				}
			}
			t.Logf("migrating slot %d (of %q) from %s to %s", slot, name, owner.Addr(), to.Addr())
			if err := rc.MigrateSlot(ctx, slot, to); err != nil {
				return err
			}
		}
		return nil
	})
	run.fault("SIGSTOP a master past cluster-node-timeout", func(ctx context.Context) error {
		m, err := ownerOf(ctx, rc, classic)
		if err != nil {
			return err
		}
		promoted, err := rc.Pause(ctx, m)
		if err != nil {
			return err
		}
		t.Logf("paused %s past cluster-node-timeout (%s); %s promoted; %s back as its replica", m.Addr(), cluster.ClusterNodeTimeout, promoted.Addr(), m.Addr())
		return nil
	})
	t.Logf("topology after the faults: %s", rc.Describe(context.Background()))
}

// ownerOf is the master owning name's slot.
func ownerOf(ctx context.Context, rc *cluster.ClusterRedis, name string) (*cluster.Redis, error) {
	slot, err := rc.KeySlot(ctx, name)
	if err != nil {
		return nil, err
	}
	m, err := rc.SlotOwner(ctx, slot)
	if err != nil {
		return nil, fmt.Errorf("owner of %q (slot %d): %w", name, slot, err)
	}
	return m, nil
}
