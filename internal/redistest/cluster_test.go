package redistest

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Known slots (from CLUSTER KEYSLOT on redis-server 7).
func TestSlot(t *testing.T) {
	tests := []struct {
		key  string
		want int
	}{
		{"foo", 12182},
		{"{user1000}.following", 3443},
		{"{user1000}.followers", 3443},
		{"foo{}{bar}", 8363},
		{"foo{{bar}}zap", 4015},
		{"foo{bar}{zap}", 5061},
	}
	for _, tc := range tests {
		if got := Slot(tc.key); got != tc.want {
			t.Errorf("Slot(%q) = %d, want %d", tc.key, got, tc.want)
		}
	}
}

// The helper's levers work on a real cluster: keys land where Slot says,
// a slot moves with its keys, a replica takes over by CLUSTER FAILOVER and
// after a kill -9, and a paused master comes back.
func TestClusterLevers(t *testing.T) {
	c := StartCluster(t, ClusterOptions{Masters: 3, Replicas: 1})
	if got := len(c.Masters()); got != 3 {
		t.Fatalf("masters = %d, want 3", got)
	}
	ctx := context.Background()
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), DialTimeout: time.Second})
	t.Cleanup(func() { _ = rdb.Close() })
	const key = "redistest:probe"
	if err := rdb.Set(ctx, key, "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	owner := c.MasterOfKey(key)
	if got, err := c.client(owner.Addr()).Get(ctx, key).Result(); err != nil || got != "v" {
		t.Fatalf("GET on the owner = %q, %v", got, err)
	}
	if n, err := c.client(owner.Addr()).ClusterCountKeysInSlot(ctx, int(Slot(key))).Result(); err != nil || n != 1 {
		t.Fatalf("COUNTKEYSINSLOT on the owner = %d, %v", n, err)
	}

	var to *Node
	for _, m := range c.Masters() {
		if m != owner {
			to = m
			break
		}
	}
	c.MoveSlot(Slot(key), to)
	if got := c.MasterOfKey(key); got != to {
		t.Fatalf("after MoveSlot the key is on %s, want %s", got.Addr(), to.Addr())
	}
	if got, err := c.client(to.Addr()).Get(ctx, key).Result(); err != nil || got != "v" {
		t.Fatalf("GET on the new owner = %q, %v", got, err)
	}
	c.WaitHealthy()

	reps := c.ReplicasOf(to)
	if len(reps) != 1 {
		t.Fatalf("replicas of %s = %d, want 1", to.Addr(), len(reps))
	}
	c.Failover(reps[0])
	c.WaitHealthy()
	if got := c.MasterOfKey(key); got != reps[0] {
		t.Fatalf("after Failover the key is on %s, want %s", got.Addr(), reps[0].Addr())
	}

	m := c.MasterOfKey(key)
	rep := c.ReplicasOf(m)[0]
	c.Kill(m)
	c.eventually("the replica to be promoted after kill -9", func() error {
		if c.MasterOfKey(key) != rep {
			return context.DeadlineExceeded
		}
		return nil
	})
	c.Restart(m)
	c.WaitHealthy()

	p := c.Masters()[0]
	c.Pause(p)
	c.Cont(p)
	c.WaitHealthy()
}
