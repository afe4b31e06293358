package cluster

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The Redis Cluster's fault helpers do what they say on real processes:
// each returns once the running nodes agree on the new shape.
func TestClusterRedisFaults(t *testing.T) {
	if err := Need("redis-server", "redis-cli"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ports, err := reservePorts(6)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := startClusterRedis(ctx, t.TempDir(), ports)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Stop(5 * time.Second)
	t.Logf("started: %s", rc.Describe(ctx))
	masters, err := rc.Masters(ctx)
	if err != nil || len(masters) != 3 {
		t.Fatalf("masters %v, %v; want 3", masters, err)
	}

	// kill -9 a master: its replica takes over; the old one rejoins as a replica.
	promoted, err := rc.KillMaster(ctx, masters[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.RestartNode(ctx, masters[0]); err != nil {
		t.Fatal(err)
	}
	if r, err := rc.ReplicaOf(ctx, promoted); err != nil || r != masters[0] {
		t.Fatalf("replica of %s = %v, %v; want the restarted %s", promoted.Addr(), r, err, masters[0].Addr())
	}
	// CLUSTER FAILOVER: the old master back.
	if err := rc.Failover(ctx, masters[0]); err != nil {
		t.Fatal(err)
	}
	// A slot with a key moves, key included.
	slot, err := rc.KeySlot(ctx, "sge2e:events:{0}")
	if err != nil {
		t.Fatal(err)
	}
	owner, err := rc.SlotOwner(ctx, slot)
	if err != nil {
		t.Fatal(err)
	}
	if err := adminDo(ctx, owner, "SET", "{0}k", "v").Err(); err != nil {
		t.Fatal(err)
	}
	masters, _ = rc.Masters(ctx)
	to := masters[0]
	if to == owner {
		to = masters[1]
	}
	if err := rc.MigrateSlot(ctx, slot, to); err != nil {
		t.Fatal(err)
	}
	if v, err := adminDo(ctx, to, "GET", "{0}k").Text(); err != nil || v != "v" {
		t.Fatalf("GET on the new owner = %q, %v", v, err)
	}
	// SIGSTOP past the node timeout, then SIGCONT: it comes back a replica.
	paused := masters[2]
	promoted, err = rc.Pause(ctx, paused)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := rc.ReplicaOf(ctx, promoted); err != nil || r != paused {
		t.Fatalf("replica of %s = %v, %v; want the paused %s", promoted.Addr(), r, err, paused.Addr())
	}
	t.Logf("after the faults: %s", rc.Describe(ctx))
}

// The Sentinel fault helpers: SENTINEL FAILOVER, kill -9 of the master,
// and the old master back as a replica.
func TestSentinelRedisFaults(t *testing.T) {
	if err := Need("redis-server", "redis-sentinel"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ports, err := reservePorts(5)
	if err != nil {
		t.Fatal(err)
	}
	sr, err := startSentinelRedis(ctx, t.TempDir(), ports)
	if err != nil {
		t.Fatal(err)
	}
	defer sr.Stop(5 * time.Second)
	first, err := sr.Master(ctx)
	if err != nil {
		t.Fatal(err)
	}
	second, err := sr.Failover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if second == first {
		t.Fatalf("SENTINEL FAILOVER kept %s", first.Addr())
	}
	killed, third, err := sr.KillMaster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if killed != second || third != first {
		t.Fatalf("kill: killed %s, master %s; want %s killed and %s master", killed.Addr(), third.Addr(), second.Addr(), first.Addr())
	}
	if err := sr.RestartNode(ctx, killed); err != nil {
		t.Fatal(err)
	}
	if m, err := sr.Master(ctx); err != nil || m != first {
		t.Fatalf("after restart master = %v, %v", m, err)
	}
}

// An unknown Options.Redis is an error naming the three topologies.
func TestUnknownTopologyRefused(t *testing.T) {
	c := &Cluster{}
	err := c.startRedisTopology(context.Background(), Options{Redis: "replicated"}, 0, t.Logf)
	if err == nil || !strings.Contains(err.Error(), `"single", "cluster" or "sentinel"`) {
		t.Fatalf("startRedisTopology = %v", err)
	}
}
