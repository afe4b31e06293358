package redistest

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Sentinel topology is real: a kill -9 of the master promotes a
// replica, the killed node comes back as a replica of the new master, and
// SENTINEL FAILOVER moves the master again; a failover client follows.
func TestSentinelFailovers(t *testing.T) {
	s := StartSentinel(t, SentinelOptions{})
	first := s.Master()
	if first != s.Nodes()[0].Addr() {
		t.Fatalf("master = %s, want the first node %s", first, s.Nodes()[0].Addr())
	}
	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: s.MasterName(), SentinelAddrs: s.SentinelAddrs()})
	t.Cleanup(func() { _ = c.Close() })
	setOn := func(want string) {
		t.Helper()
		deadline := time.Now().Add(topologyTimeout)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := c.Set(ctx, "k", want, 0).Err()
			cancel()
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("SET through the failover client: %v", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	setOn("before")

	killed := s.KillMaster()
	second := s.WaitMaster(killed)
	setOn("after kill")
	s.Restart(killed)
	s.WaitReplica(killed)

	old := s.Failover()
	if old != second {
		t.Fatalf("Failover moved from %s, want %s", old, second)
	}
	third := s.WaitMaster(second)
	setOn("after failover")
	s.WaitReplica(second)
	if got, err := s.Node(third).Do("ROLE"); err != nil || got != "*3" {
		t.Fatalf("ROLE on the new master: %q, %v", got, err)
	}
}
