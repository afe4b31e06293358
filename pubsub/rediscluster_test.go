package pubsub

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// startRedisCluster starts three redis-server nodes and joins them into a
// Redis Cluster with no replicas. It returns the node addresses.
func startRedisCluster(t *testing.T) []string {
	t.Helper()
	cli := redistest.LookPath(t, "redis-cli") // fails, never skips, when redis-tools is missing
	var addrs []string
	var nodes []*redistest.Server
	for i := 0; i < 3; i++ {
		srv := redistest.Start(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000")
		nodes = append(nodes, srv)
		addrs = append(addrs, srv.Addr())
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	eventually(t, "cluster_state:ok on every node", func() bool {
		for _, n := range nodes {
			out, err := exec.Command(cli, "-p", strconv.Itoa(n.Port()), "cluster", "info").Output()
			if err != nil || !strings.Contains(string(out), "cluster_state:ok") {
				return false
			}
		}
		return true
	})
	return addrs
}

func TestRedisBusOnRedisCluster(t *testing.T) {
	addrs := startRedisCluster(t)
	// Each instance knows a different seed node; PUBLISH reaches every node.
	a := NewRedisBus(newClient(t, addrs[0], addrs[1], addrs[2]), RedisConfig{}, zaptest.NewLogger(t))
	b := NewRedisBus(newClient(t, addrs[2], addrs[1], addrs[0]), RedisConfig{}, zaptest.NewLogger(t))
	ra, rb := startRecorded(t, a), startRecorded(t, b)
	for i := 0; i < 100; i++ {
		bus := Bus(a)
		if i%2 == 1 {
			bus = b
		}
		if err := bus.Publish(context.Background(), msg(i)); err != nil {
			t.Fatal(err)
		}
	}
	// Each publisher's events arrive in order; the two publishers' events
	// may interleave differently, as they travel through different nodes.
	for _, r := range []*recorder{ra, rb} {
		last := map[int]int{0: -2, 1: -1}
		for range 100 {
			select {
			case e := <-r.events:
				n := seq(e)
				if n < 0 || n <= last[n%2] {
					t.Fatalf("event %d arrived after %d from the same publisher", n, last[n%2])
				}
				last[n%2] = n
			case <-time.After(waitFor):
				t.Fatalf("only some events received; last per publisher: %v", last)
			}
		}
	}
}
